"""Yosys ``synth_xilinx -family xcup -uram`` resources of the AXI4-Stream network design, part
by part, against the capacity of the Zynq UltraScale+ devices of the supported boards.

A full-width network is too large for one Yosys run on the build machine (the WebAssembly
Yosys has a 4 GiB address space, and one run would take hours), so the design is synthesised
as its parts, each out of context and flattened: the stem, the four stage engines and the head
(each a module of the network's Verilog with its submodules, renamed ``part_<name>``), and
the AXI4-Stream wrapper with its weight store (the network instance a black box). The design's
figure is the sum; the top of the network (wires between the parts) has no logic of its own.
Each part is cached by content (:func:`bincount.hw.synth.synthesize`), so a repeated build
costs nothing.

Capacities (:data:`DEVICES`, product data sheets DS891 and the Kria K26 SOM data sheet DS987):
LUT, FF, 36 Kb block RAMs, 288 Kb UltraRAMs, DSP48E2 slices.
"""

import re

from bincount.hw.synth import synthesize

__all__ = ["DEVICES", "CLASSES", "network_parts", "wrapper_alone", "design_resources",
           "fit_table"]

#: ``{board: {...}}``: device, part number and capacity.
DEVICES = {
    "kv260": {"device": "XCK26 (Kria K26 SOM)", "part": "xck26-sfvc784-2LV-c",
              "lut": 117120, "ff": 234240, "bram36": 144, "uram": 64, "dsp": 1248},
    "zcu104": {"device": "XCZU7EV", "part": "xczu7ev-ffvc1156-2-e",
               "lut": 230400, "ff": 460800, "bram36": 312, "uram": 96, "dsp": 1728},
}

#: Resource classes of the table: (key, label).
CLASSES = (("lut", "LUT"), ("ff", "FF"), ("bram36", "BRAM36"), ("uram", "URAM288"),
           ("dsp", "DSP48E2"))

_MODULE = re.compile(r"^module\s+(\\?\S+?)\s*\(", re.M)


def _modules(text):
    """``[(name, text)]`` of every module of a Verilog text, ``module`` to ``endmodule`` (the
    attributes written before a module are dropped)."""
    out = []
    for m in _MODULE.finditer(text):
        end = text.index("endmodule", m.start()) + len("endmodule")
        out.append((m.group(1).lstrip("\\"), text[m.start():end] + "\n"))
    return out


def network_parts(text, top):
    """``{part: (module, verilog)}`` of the network ``top``'s submodules (stem, stages, head,
    converters): each part's module and its submodules, the part's module renamed
    ``part_<part>``."""
    mods = _modules(text)
    names = sorted({name[len(top) + 1:].split(".")[0] for name, _ in mods
                    if name.startswith(top + ".")})
    out = {}
    for part in names:
        full = f"{top}.{part}"
        body = []
        for name, mtext in mods:
            if name == full:
                mtext = re.sub(r"^module\s+\\?\S+?\s*\(", f"module part_{part}(", mtext,
                               count=1, flags=re.M)
                body.append(mtext)
            elif name.startswith(full + "."):
                body.append(mtext)
        out[part] = (f"part_{part}", "".join(body))
    return out


def wrapper_alone(wrapper_text, network_text, network_top):
    """The wrapper's Verilog with the network as a black box (its port declarations only)."""
    mods = dict(_modules(network_text))
    body = mods[network_top]
    header = body[:body.index(";") + 1]
    decls = [ln.strip() for ln in body.splitlines()
             if re.match(r"\s*(input|output)\b.*;\s*$", ln)]
    stub = "(* blackbox *)\n" + header + "\n" + "\n".join(decls) + "\nendmodule\n"
    return wrapper_text + "\n" + stub


def design_resources(design, progress=None, timeout=None):
    """Synthesise every part of ``design`` (:func:`bincount.hw.axis_emit.axis_design`) for
    xcup; ``{"parts": {part: result}, "total": {...}}``. ``progress(part, result)`` is called
    after each part (in the order wrapper, stem, head, stage1..4, converters: small first)."""
    top = design["network_manifest"]["module"]
    parts = network_parts(design["network_verilog"], top)
    order = sorted(parts, key=lambda p: (["stem", "head", "stage1", "stage2", "stage3",
                                          "stage4"] + [p]).index(p))
    jobs = [("wrapper", design["wrapper_module"],
             wrapper_alone(design["wrapper_verilog"], design["network_verilog"], top))]
    jobs += [(p, *parts[p]) for p in order]
    results = {}
    for part, module, text in jobs:
        r = synthesize(text, module, "xcup", timeout=timeout)
        results[part] = r
        if progress is not None:
            progress(part, r)
    return {"parts": results, "total": total_of(results)}


def total_of(results):
    """Sum of the parts' lut, ff, carry, dsp, uram, bram (18 Kb) and bram36 (``bram / 2``)."""
    keys = ("lut", "ff", "carry", "dsp", "bram", "uram")
    total = {k: sum(int(r.get(k, 0)) for r in results.values()) for k in keys}
    total["bram36"] = total["bram"] / 2
    return total


def fit_table(total, boards=tuple(DEVICES)):
    """``{board: {class: (used, capacity, percent)}, "fits": bool}``."""
    out = {}
    for b in boards:
        dev = DEVICES[b]
        row = {k: (total[k], dev[k], round(100.0 * total[k] / dev[k], 1)) for k, _ in CLASSES}
        row["fits"] = all(used <= cap for used, cap, _ in
                          (row[k] for k, _ in CLASSES))
        out[b] = row
    return out
