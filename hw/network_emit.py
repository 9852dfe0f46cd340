"""Verilog of the whole-network engine (:class:`bincount.gateware.network_top.NetworkTop`) with
a JSON manifest beside it.

The module name says what it holds::

    bincount_network_{form}_{digest}

``digest``: the first 10 hex digits of the SHA-256 of the export's arrays and metadata and the
knobs, so the same export and knobs give the same name and the same bytes. The manifest lists
the ports, and per part (stem, stages 1-4, head): ``lanes`` (P), ``bits_per_cycle`` (B, stages),
``cycles_per_image`` (ideal), ``weight_bits``, ``memories`` (every memory of the part's Verilog:
module path, name, width, depth) and ``multipliers`` (the multiplications of two signals in the
part's Verilog, each at most 18 x 25 bits: one DSP block); the width converters; the ideal
cycles per image of the network (its slowest part); and, when given, the fold plan
(:mod:`bincount.hw.fold_plan`).
"""

import hashlib
import json
import re

import numpy as np

from bincount import __version__
from bincount.gateware.network_top import PARTS, NetworkTop
from bincount.hw.emit import verilog_text
from bincount.hw.engine_emit import engine_ports
from bincount.hw.ports import module_names
from bincount.model.export.network_file import export_meta

__all__ = ["export_digest", "build_network", "emit_network", "verilog_parts"]


def export_digest(export):
    """Hex SHA-256 of every array and the metadata of ``export``."""
    meta = export_meta(export)
    h = hashlib.sha256()
    h.update(json.dumps({k: meta[k] for k in ("formats", "stem", "layers", "head", "input")},
                        sort_keys=True).encode())
    for key in sorted(k for k in export if k not in ("meta", "meta_json")):
        a = np.ascontiguousarray(np.asarray(export[key]))
        h.update(key.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def build_network(export, lanes=None, bits_per_cycle=None, stem_lanes=None, head_lanes=None,
                  taps=False, weights=None):
    """``(top, module_name, parameters)``; knobs as :class:`NetworkTop`. ``parameters`` has
    ``weights`` (one source per stage) only when a stage streams its weights, so the names of
    the all-on-chip designs are unchanged."""

    top = NetworkTop(export, lanes, bits_per_cycle, stem_lanes, head_lanes, taps, weights)
    meta = export_meta(export)
    forms = sorted({m["form"] for m in meta["layers"]})
    params = {"form": "+".join(forms), "stem_lanes": top.stem_lanes, "lanes": top.lanes,
              "bits_per_cycle": top.bits_per_cycle, "head_lanes": top.head_lanes,
              "taps": top.taps, "export_digest": export_digest(export)}
    if any(w != "memory" for w in top.weights):
        params["weights"] = list(top.weights)
    knobs = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    name = f"bincount_network_{params['form'].replace('+', '_')}_{knobs[:10]}"
    return top, name, params


_MEM = re.compile(r"^\s*reg\s+(?:signed\s+)?\[(\d+):0\]\s+(\\?\S+)\s+\[(\d+):0\];", re.M)
_MUL = re.compile(r"=\s*(\$signed\([^;]*?\)|[\\\w$.\[\]: ]+?)\s\*\s(\$signed\([^;]*?\)|[^;]+);")


def verilog_parts(text, top_name):
    """``{part: {"memories": [...], "multipliers": n}}`` from the Verilog of a network top:
    each module's memories (``reg [w-1:0] name [0:d-1]``) and its multiplications whose
    operands are both signals (a constant factor is not a multiplier), by the part its
    hierarchical module name lies in (``<top>.<part>...``; converters under ``other``)."""
    out = {p: {"memories": [], "multipliers": 0} for p in PARTS + ("other",)}
    starts = module_names(text)
    for j, (pos, mod) in enumerate(starts):
        end = starts[j + 1][0] if j + 1 < len(starts) else len(text)
        body = text[pos:end]
        rest = mod[len(top_name) + 1:] if mod.startswith(top_name + ".") else ""
        part = rest.split(".")[0] if rest.split(".")[0] in PARTS else "other"
        for w, name, d in _MEM.findall(body):
            out[part]["memories"].append({"module": mod, "name": name.lstrip("\\"),
                                          "width": int(w) + 1, "depth": int(d) + 1})
        for a, b in _MUL.findall(body):
            if not re.match(r"\s*\d+'", b) and not re.match(r"\s*\d+'", a):
                out[part]["multipliers"] += 1
    return out


def _part_info(top, text, name):
    found = verilog_parts(text, name)
    info = []
    for part, comp in top.parts:
        p = comp.params
        entry = {"name": part, "cycles_per_image": comp.ideal_cycles}
        if part == "stem":
            entry.update({"lanes": p.lanes, "weight_bits": p.weight_bits,
                          "multipliers_formula": p.multipliers})
        elif part == "head":
            entry.update({"lanes": p.lanes, "weight_bits": p.weight_bits,
                          "multipliers_formula": p.multipliers})
        else:
            blocks = comp.params
            entry.update({"lanes": blocks[0].lanes, "bits_per_cycle": blocks[0].bits_per_cycle,
                          "layers": [b.name for b in blocks],
                          "weight_bits": sum(b.n * b.cout for b in blocks),
                          "multipliers_formula": sum(b.multipliers for b in blocks)})
        mems = found[part]["memories"]
        entry.update({"memories": mems, "memory_bits": sum(m["width"] * m["depth"] for m in mems),
                      "multipliers": found[part]["multipliers"]})
        info.append(entry)
    return info


def _manifest(top, name, params, text, plan=None):
    ports = engine_ports(top, name, text)
    parts = _part_info(top, text, name)
    convs = [{"after": PARTS[j], "lanes_in": c.lanes_in, "lanes_out": c.lanes_out}
             for j, c in enumerate(top.converters) if c is not None]
    out = {"module": name, "block": "network", "parameters": params, "ports": ports,
           "parts": parts, "converters": convs, "ideal_cycles": top.ideal_cycles,
           "multipliers": sum(p["multipliers"] for p in parts), "latency": None,
           "clock": "clk", "reset": "rst (synchronous, active high)",
           "generator": f"bincount {__version__}"}
    if plan is not None:
        out["plan"] = plan
    return out


def emit_network(export, lanes=None, bits_per_cycle=None, stem_lanes=None, head_lanes=None,
                 taps=False, plan=None, weights=None):
    """Verilog text and manifest of the network engine (nothing written)."""
    top, name, params = build_network(export, lanes, bits_per_cycle, stem_lanes, head_lanes,
                                      taps, weights)
    header = [f"bincount {__version__}: whole-network engine, parameters "
              f"{json.dumps(params, sort_keys=True)}",
              f"ports, parts and cycles: {name}.json"]
    text = verilog_text(top, name, header=header)
    return text, _manifest(top, name, params, text, plan)
