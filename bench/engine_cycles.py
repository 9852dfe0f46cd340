"""Cycles per layer and per image of the stage engines, measured in Verilator.

For each stage and form, the stage engine (at ``--lanes`` / ``--bits-per-cycle``, default the
engine defaults) is generated from the engine-golden network (a full-width ReActNet-18
calibrated on real CIFAR-10 test images), built with Verilator and fed the same real test image
twice back to back, with no input gaps and no output stalls. Every output element of every
layer is still compared with the integer reference (a mismatch fails the run). Measured:

- layer cycles: each distinct layer shape (``conv1`` and ``conv2`` of every stage; ``conv3`` and
  ``conv4`` have ``conv2``'s shape, and an engine's timing depends only on shape and stalls,
  never on the data) built alone and fed alone: first input beat to last output beat, against
  the ideal ``Ho*Wo*(Cout/P)*F``;
- image latency: first input beat of the stage to its last output beat (first image);
- interval: cycles between the last output beats of the two images (steady-state cycles per
  image when images follow each other).

The result replaces the "Stage engines: cycles" section of docs/benchmarks.md and is written
as JSON to ``build/bench/engine_cycles.json``; each stage's measurement is also recorded in the
build store (``bincount.hw.measured_cycles``, ``build/cache/cycles/`` or
``$BINCOUNT_CACHE_DIR/cycles``), where ``bincount report --engines`` finds it for engines of
the same layer shapes, knobs and gateware.

    python bench/engine_cycles.py [--stages 1 2 3 4] [--forms binarized baseline]
        [--lanes 8] [--bits-per-cycle B[,B,B,B]] [--post-lanes Q] [--output docs/benchmarks.md]
    python bench/engine_cycles.py --report-fold --whole-stages-only --output -

``--report-fold`` measures the fold ``bincount report --engines`` builds (``hw/knobs.py``
``REPORT_KNOBS``: lanes, B per stage, shared post-popcount units; the memory styles only ask
the synthesis tool for a kind of RAM and do not change the timing), so that the report shows
measured cycles; ``--whole-stages-only`` skips the runs of single layers.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BEGIN = "<!-- bench/engine_cycles.py: begin -->"
END = "<!-- bench/engine_cycles.py: end -->"
RESULTS = ROOT / "build" / "bench" / "engine_cycles.json"


def parse(argv=None):
    from bincount.errors import BincountError
    from bincount.gateware.block_params import DEFAULT_BITS_PER_CYCLE, DEFAULT_LANES
    from bincount.hw.engine_report import check_knobs_for_stages
    from bincount.hw.knobs import EngineKnobs, report_knobs
    from bincount.hw.network_cli import parse_ints

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    p.add_argument("--forms", nargs="+", default=["binarized", "baseline"])
    p.add_argument("--lanes", type=int, default=None,
                   help=f"output channels per cycle (default {DEFAULT_LANES})")
    p.add_argument("--bits-per-cycle", default=None, metavar="B[,B,B,B]",
                   help=f"window bits per lane and cycle, one or one per stage (default "
                        f"{DEFAULT_BITS_PER_CYCLE})")
    p.add_argument("--post-lanes", type=int, default=None,
                   help="post-popcount units per block shared by the lanes (default: one per "
                        "lane)")
    p.add_argument("--report-fold", action="store_true",
                   help="the fold of bincount report --engines (REPORT_KNOBS) for every knob "
                        "not given")
    p.add_argument("--whole-stages-only", action="store_true",
                   help="measure the whole stages only, not their layers alone")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                   help="markdown file whose section is replaced ('-' prints only)")
    args = p.parse_args(argv)
    options = {"lanes": "--lanes", "bits_per_cycle": "--bits-per-cycle",
               "post_lanes": "--post-lanes"}
    try:
        given = {"lanes": args.lanes, "post_lanes": args.post_lanes,
                 "bits_per_cycle": (None if args.bits_per_cycle is None else
                                    parse_ints("bits-per-cycle", args.bits_per_cycle))}
        if args.report_fold:        # the memory styles do not change the timing (docstring)
            knobs = report_knobs(options, **given)
        else:
            knobs = EngineKnobs(given["lanes"] or DEFAULT_LANES,
                                given["bits_per_cycle"] or DEFAULT_BITS_PER_CYCLE,
                                post_lanes=given["post_lanes"], options=options)
        args.knobs = check_knobs_for_stages(knobs, args.stages)
    except BincountError as e:
        p.error(str(e))
    return args


def measure(form, stage, knobs, layers=None):
    """Run stage ``stage`` (or ``layers`` of it alone) of the engine-golden network of ``form``
    at ``knobs`` in Verilator; the run's results, recorded in the build store for a whole
    stage."""
    from sim import simlib
    from sim.engine_sim import run_stage

    simlib.setup_verilator()
    golden = simlib.engine_golden(form)
    from sim.engine_sim import SIM_KNOBS

    from bincount.hw.knobs import report_knobs

    lanes, bpc, q = knobs.lanes, knobs.stage_bits(stage), knobs.post_lanes
    report = report_knobs({})
    part = "" if layers is None else "-" + "-".join(n.split(".")[1] for n in layers)
    # the test suite's builds where it builds the same engine (sim/test_stage_engine.py)
    if layers is None and q is None and (lanes, bpc) == (SIM_KNOBS["lanes"],
                                                         SIM_KNOBS["bits_per_cycle"]):
        test_id = f"test_stage_engine[{form}-{stage}]"
    elif layers is None and (lanes, bpc, q) == (report.lanes, report.stage_bits(stage),
                                                report.post_lanes):
        test_id = f"test_stage_engine_at_the_report_fold[{form}-{stage}]"
    else:
        test_id = (f"bench_stage_engine-{form}-{stage}{part}-p{lanes}-b{bpc}"
                   + ("" if q is None else f"-q{q}"))
    t0 = time.perf_counter()
    run_stage(test_id, "sim.test_stage_engine", golden, stage, {"stall": 0.0, "repeats": 2},
              lanes=lanes, bits_per_cycle=bpc, layers=layers, post_lanes=q)
    folder = simlib.build_root() / simlib.test_dir_name(test_id)
    result = json.loads((folder / "engine_results.json").read_text())
    result["form"] = form
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if layers is None and not result.get("failures"):
        from bincount.hw.measured_cycles import record_engine_cycles
        from sim.engine_sim import emit_stage_cached

        _, manifest = emit_stage_cached(golden, stage, lanes, bpc, folder,   # cached
                                        post_lanes=q)
        record_engine_cycles(manifest, result)
    return result


def section(rows, layer_rows, args):
    k = args.knobs
    bpc = (", ".join(map(str, k.bits_per_cycle)) + " (stages 1-4)"
           if isinstance(k.bits_per_cycle, tuple) else str(k.bits_per_cycle))
    lines = [BEGIN, "## Stage engines: cycles (Verilator)", "",
             f"`{' '.join(['python bench/engine_cycles.py'] + args.argv)}`"
             + f": each stage engine generated from the engine-golden network "
             f"(full-width ReActNet-18 calibrated on real CIFAR-10 test images), one real test "
             f"image fed twice back to back, no input gaps, no output stalls, every output "
             f"element of every layer compared (all equal). Ideal = `Ho*Wo*(Cout/P)*F` "
             f"with P = {k.lanes} lanes, B = {bpc} bits per cycle"
             + (f", Q = {k.post_lanes} post-popcount units per block" if k.post_lanes else "")
             + ".", ""]
    if layer_rows:
        lines += ["| stage | form | layer | ideal cycles | measured | ratio |",
                  "| --- | --- | --- | ---: | ---: | ---: |"]
        for r in layer_rows:
            name, ideal, got = r["layers"][0], r["ideal_cycles"][0], r["image_latency"]
            lines.append(f"| {r['stage']} | {r['form']} | {name} (alone) | {ideal:,} | "
                         f"{got:,} | {got / ideal:.3f} |")
        lines.append("")
    lines += ["| stage | form | image latency (cycles) | interval (cycles per image) | "
              "interval / slowest ideal |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        ideal = max(r["ideal_cycles"])
        lines.append(f"| {r['stage']} | {r['form']} | {r['image_latency']:,} | "
                     f"{r['interval']:,} | {r['interval'] / ideal:.3f} |")
    if layer_rows:
        worst = max(r["image_latency"] / r["ideal_cycles"][0] for r in layer_rows)
        lines += ["", f"Largest layer ratio measured: {worst:.3f} (target: within 1.10 of "
                      f"ideal)."]
    else:
        worst = max(r["interval"] / max(r["ideal_cycles"]) for r in rows)
        lines += ["", f"Largest interval ratio measured: {worst:.3f} (target: within 1.10 of "
                      f"ideal)."]
    lines += [("A layer's cycles run from its first input beat to its last output beat with the "
               "block built and fed alone, so they include receiving the window's first two rows "
               "and draining the pipeline. " if layer_rows else "")
              + "In a stage the blocks work on consecutive rows at once: the image latency is "
              "first input to last output of the whole stage, the interval is what a stream of "
              "images sees (set by the slowest block; the stride-2 entry block, with half the "
              "work, waits for its consumer).", END]
    return "\n".join(lines) + "\n"


def write_section(path, text):
    from bincount.fileio import replace_marked_section

    replace_marked_section(path, BEGIN, END, text)


def main(argv=None):
    from bincount.fileio import atomic_write_text

    args = parse(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    args.argv = [a for j, a in enumerate(argv)          # the command as the section quotes it
                 if a != "--output" and (j == 0 or argv[j - 1] != "--output")]
    rows, layer_rows = [], []
    for stage in args.stages:
        for form in args.forms:
            print(f"stage {stage} {form}: generating, building, simulating ...", flush=True)
            r = measure(form, stage, args.knobs)
            print(f"  latency {r['image_latency']}, interval {r['interval']} (ideal per layer "
                  f"{r['ideal_cycles']}), {r['wall_s']} s", flush=True)
            rows.append(r)
            for name in ([] if args.whole_stages_only else r["layers"][:2]):
                q = measure(form, stage, args.knobs, layers=[name])
                print(f"  {name} alone: {q['image_latency']} cycles (ideal "
                      f"{q['ideal_cycles'][0]}), {q['wall_s']} s", flush=True)
                layer_rows.append(q)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps({"lanes": args.knobs.lanes,
                                           "bits_per_cycle": args.knobs.bits_per_cycle,
                                           "post_lanes": args.knobs.post_lanes,
                                           "stages": rows, "layers": layer_rows},
                                          indent=2) + "\n")
    text = section(rows, layer_rows, args)
    if args.output == "-":
        print(text)
    else:
        write_section(args.output, text)
        print(f"wrote {args.output} and {RESULTS}")


if __name__ == "__main__":
    main()
