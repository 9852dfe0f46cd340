"""Yosys xcup resources of the full-width Zynq UltraScale+ board design against the KV260's and
the ZCU104's devices.

Builds the board design of ``hw/board_kv260.py`` (``build_board``: the full-width ReActNet-18
calibrated on the bundled sample images, default knobs, stage 4's weights in the loadable
store) into ``--out`` (default ``build/board-kv260``), which runs
``synth_xilinx -family xcup -uram`` on each part (:mod:`bincount.hw.zynq_resources`), and
replaces the "Zynq UltraScale+ board design: resources" section of docs/benchmarks.md with the
table, the command, date, commit and run time. The synthesis results are cached by content
(``build/cache/synth``), so a second run costs only the emission.

    python bench/zynq_resources.py [--board kv260] [--out build/board-kv260]
        [--output docs/benchmarks.md]
"""

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BEGIN = "<!-- bench/zynq_resources.py: begin -->"
END = "<!-- bench/zynq_resources.py: end -->"


def commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", default="kv260", choices=["kv260", "zcu104"])
    p.add_argument("--out", default=str(ROOT / "build" / "board-kv260"))
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                   help="markdown file whose section is replaced ('-' prints only)")
    return p.parse_args(argv)


def section(summary, manifest, res, wall, started):
    from bincount.hw.board_kv260 import resources_table
    from bincount.hw.zynq_resources import fit_table

    t = summary["total"]
    dev = summary["devices"]
    verdict = []
    for b, d in dev.items():
        over = [k for k in d["used"] if d["used"][k] > d["capacity"][k]]
        verdict.append(f"**{b}: " + ("fits** (largest use: " + max(
            d["percent"], key=d["percent"].get) + f" {max(d['percent'].values()):g} %)"
            if d["fits"] else "does not fit**: " + ", ".join(
                f"{k} {d['used'][k]:g} of {d['capacity'][k]:g}" for k in over)))
    lines = [
        BEGIN,
        "## Zynq UltraScale+ board design: resources",
        "",
        f"`python bench/zynq_resources.py` ({started}, commit {commit()}, {wall:.0f} s "
        f"wall, synthesis taken from the build store where it held it; the Yosys runs behind "
        f"the figures took "
        f"{sum(p['seconds'] or 0 for p in res['parts'].values()):.0f} s wall on 2 shared "
        f"cores): the design of "
        f"`bincount build --board {summary['board']}` (full-width ReActNet-18, binarized "
        f"counting, concat shortcut, calibrated random weights; default knobs P = "
        f"{manifest['parts'][1]['lanes']}, B = {manifest['parts'][1]['bits_per_cycle']}; "
        f"stage 4's weights in the loadable store), {summary['yosys']}, "
        "`synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf`, one out-of-context run "
        "per part (stem, stages, head, and the AXI4-Stream wrapper with its weight store and "
        "the network as a black box); the total is their sum. BRAM36 = RAMB36E2 + "
        "RAMB18E2 / 2. Yosys counts, not Vivado's: no place and route was run.",
        "",
    ]
    lines += resources_table(res, fit_table(res["total"]), seconds=True).splitlines()
    lines += [
        "",
        f"Reading: the full-width weights are {manifest['weight_bits_total']:,} bits "
        f"({manifest['weight_bits_total'] / 2**20:.2f} Mibit); stage 4 holds "
        f"{manifest['weight_bits_stage4']:,} of them, in {t['uram']} URAM288 (loaded at run "
        f"time: an UltraRAM has no initial contents); the rest of the design (the initialised "
        f"weights and constants of the stem, stages 1-3 and the head, and every line buffer) "
        f"takes {t['bram36']:g} BRAM36. " + "; ".join(verdict) + ".",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bincount.fileio import replace_marked_section
    from bincount.hw.board_kv260 import build_board

    args = parse(argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    out = Path(args.out)
    build_board(SimpleNamespace(board=args.board, export=None, lanes=None, bits_per_cycle=None,
                                clock_mhz=None, force=True, resources=True), out)
    wall = time.monotonic() - t0
    summary = json.loads((out / "resources.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    parts = {p["name"]: p for p in manifest["parts"]}
    manifest["weight_bits_total"] = sum(p["weight_bits"] for p in manifest["parts"])
    manifest["weight_bits_stage4"] = parts["stage4"]["weight_bits"]
    # the per-part Yosys times (not in the build's files): the same runs, from the cache
    from bincount.hw.axis_emit import axis_design
    from bincount.hw.board_kv260 import STREAM_STAGES
    from bincount.hw.cache import default_cache_dir
    from bincount.hw.zynq_resources import design_resources
    from bincount.model.export.network_golden import network_golden

    export, _ = network_golden("binarized", 1.0, seed=1, test_images=1)
    design = axis_design(export, {}, STREAM_STAGES, cache_dir=default_cache_dir("verilog"))
    res = design_resources(design)
    assert res["total"] == summary["total"], "the build's resources differ from the rerun's"
    text = section(summary, manifest, res, wall, started)
    print(text)
    if args.output != "-":
        replace_marked_section(args.output, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
