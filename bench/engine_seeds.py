"""The stage engines' ECP5 Fmax over several nextpnr seeds: every seed, the median, the
median run's critical path, and the issue's 150 MHz target, per stage and form.

    python bench/engine_seeds.py --stages 1 2 3 4 --forms binarized --seeds 1 2 3 --jobs 2

(the knobs not given are the report's, :data:`bincount.hw.knobs.REPORT_KNOBS`)

Runs the report's engine section (:func:`bincount.hw.engine_report.build_engine_section`,
engine-golden networks, the same caches as ``bincount report --engines``, so a later report
at the same knobs and seeds reuses every run): Yosys ``synth_xilinx`` for the LUTs and the
ops per cycle per kLUT, then nextpnr-ecp5 on an LFE5U-85F once per seed. The Markdown table
goes to stdout and the section's JSON to ``build/bench/engine_seeds.json``; progress lines
go to stderr. An engine whose weights exceed the 85F's block RAM (stage 4) is placed with
streamed weights, as in the report.
"""

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from bincount.hw.cache import cache_dirs
from bincount.hw.engine_report import (ENGINE_FORMS, ENGINE_STAGES, bits_text,
                                       build_engine_section, check_knobs_for_stages)
from bincount.hw.knobs import report_knobs
from bincount.hw.network_cli import parse_ints
from bincount.hw.pnr import median_run_path, path_text
from bincount.hw.tasks import Progress

#: The issue's clock target for every binarized stage engine (median of the seeds).
TARGET_MHZ = 150.0


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", type=int, nargs="+", default=list(ENGINE_STAGES),
                   choices=ENGINE_STAGES)
    p.add_argument("--forms", nargs="+", default=["binarized"], choices=ENGINE_FORMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--lanes", type=int, default=None, help="P (default: the report's)")
    p.add_argument("--bits-per-cycle", default=None, metavar="B[,B,B,B]",
                   help="B, one for every stage or one per stage 1-4")
    p.add_argument("--post-lanes", type=int, default=None, help="Q (default: the report's)")
    p.add_argument("--weight-ram", choices=("auto", "block", "logic"), default=None)
    p.add_argument("--constant-ram", choices=("auto", "block", "logic"), default=None)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("build/bench/engine_seeds.json"))
    return p.parse_args(argv)


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(section, argv, commit):
    """The table and the critical paths of an engine section placed over several seeds
    (``commit``: that of the gateware measured)."""
    seeds = section["seeds"]
    knobs = (f"P = {section['lanes']}, B = {bits_text(section)}"
             + (f", Q = {section['post_lanes']}" if section.get("post_lanes") else "")
             + (f", weights {section['weight_ram']}" if section.get("weight_ram") != "auto"
                else "")
             + (f", constants {section['constant_ram']}"
                if section.get("constant_ram", "auto") != "auto" else ""))
    out = [f"`python bench/engine_seeds.py {' '.join(argv)}` ({date.today().isoformat()}, "
           f"commit {commit}; {knobs}; nextpnr-ecp5 on an LFE5U-85F, out of context, "
           f"registered I/O, seeds {', '.join(map(str, seeds))}; xc7 LUTs from "
           f"`synth_xilinx`).", "",
           "| stage | form | xc7 LUT | ops / cycle / kLUT | "
           + " | ".join(f"seed {s} (MHz)" for s in seeds)
           + f" | median (MHz) | >= {TARGET_MHZ:g} MHz | GOPS / kLUT at the median |",
           "| ---: | --- | ---: | ---: |" + " ---: |" * len(seeds) + " ---: | --- | ---: |"]
    for r in section["rows"]:
        runs = {x["seed"]: x for x in r.get("fmax_runs", [])}
        cells = [f"{runs[s]['fmax_mhz']:.2f}" if runs.get(s, {}).get("fmax_mhz") else "n/a"
                 for s in seeds]
        med = r.get("fmax_mhz")
        streamed = " (weights streamed)" if r.get("fmax_weights") == "stream" else ""
        out.append(f"| {r['stage']} | {r['form']} | {r['lut']:,} | "
                   f"{r['ops_per_cycle_per_klut']:.0f} | " + " | ".join(cells)
                   + f" | {f'{med:.2f}' if med else 'n/a'}{streamed} | "
                   + ("yes" if med and med >= TARGET_MHZ else "no") + " | "
                   + (f"{r['gops_per_klut']:.1f}" if r.get("gops_per_klut") else "n/a") + " |")
    out += ["", "Critical path of the median run (nextpnr's report):", ""]
    for r in section["rows"]:
        cp = median_run_path(r.get("fmax_runs", []))
        out.append(f"- stage {r['stage']} {r['form']}: "
                   + (f"seed {cp[0]}, {path_text(cp[1])}" if cp else "no run with a result")
                   + ".")
        errors = [x for x in r.get("fmax_runs", []) if x.get("error")]
        for x in errors:
            out.append(f"  - seed {x['seed']}: no result: {x['error']}")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = _args(argv)
    commit = _commit()                    # the gateware measured: HEAD when the run starts
    bits = None if a.bits_per_cycle is None else parse_ints("bits-per-cycle", a.bits_per_cycle)
    knobs = report_knobs({"lanes": "--lanes", "bits_per_cycle": "--bits-per-cycle",
                          "post_lanes": "--post-lanes", "weight_ram": "--weight-ram",
                          "constant_ram": "--constant-ram"},
                         lanes=a.lanes, bits_per_cycle=bits, post_lanes=a.post_lanes,
                         weight_ram=a.weight_ram, constant_ram=a.constant_ram)
    check_knobs_for_stages(knobs, a.stages)
    caches = cache_dirs()
    section = build_engine_section("xc7", knobs=knobs, stages=a.stages, forms=a.forms,
                                   seeds=a.seeds, jobs=a.jobs, progress=Progress(0, sys.stderr),
                                   fmax=True, synth_cache=caches["synth"],
                                   pnr_cache=caches["pnr"], v_cache=caches["verilog"],
                                   cycles_cache=caches["cycles"])
    section["commit"] = commit
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(section, indent=1) + "\n", encoding="utf-8")
    print(markdown(section, argv, commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
