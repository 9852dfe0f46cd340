"""Verilog of the stage engines (:class:`bincount.gateware.stage_engine.StageEngine`) with a
JSON manifest beside it.

Unlike the registry blocks (:mod:`bincount.hw.blocks`) an engine holds a trained layer's weights
and constants in its memories, so it is built from a ``bincount-network`` export. The module
name says what it is and which export it holds::

    bincount_stage{k}_{form}_p{lanes}_b{bits_per_cycle}[_wstream]_{digest}

(``_wstream``: the weights come in on one stream per block instead of from on-chip memories.)

``digest`` is the first 10 hex digits of the SHA-256 of the stage's arrays and metadata, so the
same export, stage and knobs give the same name and the same bytes. The manifest lists the ports
(``"ports"``, as for the blocks), the blocks of the stage with their geometry, the ideal cycles
per image ``Ho*Wo*(Cout/P)*F`` of each, and the export it came from.
"""

import hashlib
import json

import numpy as np

from bincount import __version__
from bincount.gateware.stage_engine import StageEngine, stage_layers
from bincount.hw.emit import CLOCK_DOC, signature_ports, verilog_text
from bincount.hw.ports import port_map
from bincount.model.export.network_file import export_meta

__all__ = ["stage_digest", "stage_module_name", "build_stage", "emit_stage", "engine_ports",
           "ENGINE_RESET_DOC"]

ENGINE_RESET_DOC = ("synchronous reset, active high: empties the FIFOs and returns the engine to "
                    "the start of an image; memories keep their contents")


def stage_digest(export, stage):
    """Hex digest of everything of ``export`` that the engine of ``stage`` is built from."""
    meta = export_meta(export)
    names = stage_layers(export, stage)
    h = hashlib.sha256()
    h.update(json.dumps({"formats": meta["formats"],
                         "layers": [m for m in meta["layers"] if m["name"] in names]},
                        sort_keys=True).encode())
    prefixes = tuple(n + "." for n in names)
    for key in sorted(k for k in export if k.startswith(prefixes)):
        a = np.ascontiguousarray(np.asarray(export[key]))
        h.update(key.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def stage_module_name(engine, digest):
    p = engine.params[0]
    part = "" if engine.whole_stage else "_" + "_".join(
        q.name.split(".")[1] for q in engine.params)
    return (f"bincount_stage{engine.stage}{part}_{p.form}_p{p.lanes}_b{p.bits_per_cycle}"
            f"{'_wstream' if p.weights == 'stream' else ''}"
            f"{f'_q{p.post_lanes}' if p.shared_post else ''}"
            f"{f'_w{p.weight_ram}' if p.weight_ram != 'auto' else ''}"
            f"{f'_c{p.constant_ram}' if p.constant_ram != 'auto' else ''}"
            f"{'_taps' if engine.taps else ''}_{digest[:10]}")


def build_stage(export, stage, lanes=None, bits_per_cycle=None, taps=False, layers=None,
                weights="memory", post_lanes=None, weight_ram="auto", constant_ram="auto"):
    """``(engine, module_name, parameters)``; knobs ``None`` take the defaults; ``layers``
    builds a run of the stage's layers only (see :class:`StageEngine`); ``weights`` is
    ``"memory"`` or ``"stream"``; ``post_lanes`` the shared post-popcount units per block
    (``None``: one per lane); ``weight_ram`` the weight memories' style, ``constant_ram`` the
    constant ROMs'."""
    kw = {k: v for k, v in (("lanes", lanes), ("bits_per_cycle", bits_per_cycle))
          if v is not None}
    engine = StageEngine(export, stage, taps=taps, layers=layers, weights=weights,
                         post_lanes=post_lanes, weight_ram=weight_ram,
                         constant_ram=constant_ram, **kw)
    digest = stage_digest(export, stage)
    p = engine.params[0]
    params = {"stage": stage, "form": p.form, "lanes": p.lanes,
              "bits_per_cycle": p.bits_per_cycle, "taps": engine.taps, "export_digest": digest,
              "layers": [q.name for q in engine.params]}
    if weights == "stream":               # (absent for on-chip weights: their bytes unchanged)
        params["weights"] = "stream"
    if p.shared_post:                     # (absent when not shared, likewise)
        params["post_lanes"] = p.post_lanes
    if p.weight_ram != "auto":
        params["weight_ram"] = p.weight_ram
    if p.constant_ram != "auto":
        params["constant_ram"] = p.constant_ram
    return engine, stage_module_name(engine, digest), params


def engine_ports(component, name, text):
    """The manifest's port list of a stream engine (clock, reset, then its signature),
    checked against module ``name`` in the Verilog ``text``."""
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False, "meaning": CLOCK_DOC},
        {"name": "rst", "direction": "input", "width": 1, "signed": False,
         "meaning": ENGINE_RESET_DOC},
    ] + signature_ports(component)
    declared = port_map(text, name)
    listed = {q["name"]: (q["direction"], q["width"]) for q in ports}
    if declared != listed:
        raise RuntimeError(f"manifest ports {listed} differ from Verilog ports {declared}")
    return ports


def _manifest(engine, name, params, text):
    ports = engine_ports(engine, name, text)
    blocks = []
    for b in engine.blocks:
        p = b.params
        blocks.append({"name": p.name, "cin": p.cin, "cout": p.cout, "stride": p.stride,
                       "in_size": p.size, "out_size": p.out_size, "n": p.n, "folds": p.folds,
                       "form": p.form, "rsign": p.rsign, "downsample": p.downsample,
                       "rprelu": p.rprelu, "multipliers": p.multipliers,
                       "ideal_cycles": p.ideal_cycles,
                       "weights": p.weights, "weight_split": p.weight_split,
                       "pipeline_latency": b.pipeline_latency, "row_slots": b.row_slots,
                       "in_beats": p.size ** 2 * p.in_groups,
                       "out_beats": p.out_size ** 2 * p.out_groups})
    return {"module": name, "block": "stage_engine", "parameters": params, "ports": ports,
            "blocks": blocks, "ideal_cycles": engine.ideal_cycles, "latency": None,
            "clock": "clk", "reset": "rst (synchronous, active high)",
            "generator": f"bincount {__version__}"}


def emit_stage(export, stage, lanes=None, bits_per_cycle=None, taps=False, layers=None,
               weights="memory", post_lanes=None, weight_ram="auto", constant_ram="auto"):
    """Verilog text and manifest of the stage engine (nothing written)."""
    engine, name, params = build_stage(export, stage, lanes, bits_per_cycle, taps, layers,
                                       weights, post_lanes, weight_ram, constant_ram)
    header = [f"bincount {__version__}: stage engine, parameters "
              f"{json.dumps(params, sort_keys=True)}",
              f"ports, blocks and cycles: {name}.json"]
    text = verilog_text(engine, name, header=header)
    return text, _manifest(engine, name, params, text)
