"""Synthesise one output lane per width in both forms and write report.md and report.json.

``bincount report`` builds, for every width N, an XNOR-popcount + threshold-compare lane
(binarized counting, ``threshold_lane``) and an XNOR-popcount + multiply/shift lane
(``baseline_lane``), synthesises them with Yosys for the chosen target (independent runs in
parallel), and writes per-lane LUT/FF/CARRY/DSP/BRAM, ratios and a network-wide estimate for
ReActNet-18 into ``DIR/report.md`` and ``DIR/report.json``. Results are cached by content under
``build/cache/`` (or ``$BINCOUNT_CACHE_DIR``): a second run with the same inputs is immediate.
"""

import argparse
import sys

__all__ = ["add_arguments", "run"]

TARGET_CHOICES = ("xc7", "xc7-nodsp", "ecp5", "ice40")   # = bincount.hw.synth.TARGETS but xcup (checked in tests)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_arguments(parser):
    from bincount.hw.knobs import REPORT_KNOBS
    from bincount.hw.limits import N_HELP
    from bincount.options import float_in, int_in

    parser.epilog = ("Results are cached by content under build/cache/ (set BINCOUNT_CACHE_DIR "
                     "to move it): a second run with the same inputs takes about a second.")
    parser.add_argument("-o", "--output", metavar="DIR", default="build/report",
                        help="directory for report.md and report.json (default: build/report)")
    parser.add_argument("--target", default="xc7", choices=TARGET_CHOICES,
                        help="synthesis target: xc7 (synth_xilinx -family xc7), xc7-nodsp "
                             "(the same with DSP inference off: multiplies in LUTs), ecp5 "
                             "(synth_ecp5) or ice40 (synth_ice40 -dsp); default xc7 (with "
                             "--network, xc7 adds an xc7-nodsp synthesis of the whole "
                             "network)")
    parser.add_argument("--widths", metavar="N", nargs="+", type=_positive_int,
                        default=[576, 1152, 2304, 4608],
                        help=f"lane widths N = k*k*Cin, {N_HELP} (the widest lane the Verilog "
                             f"conversion can build; default: 576 1152 2304 4608, the "
                             f"ReActNet-18 stages)")
    parser.add_argument("--lanes", metavar="L", type=_positive_int, default=64,
                        help="parallel lanes per stage in the network-wide estimate "
                             "(default 64)")
    parser.add_argument("--jobs", "-j", metavar="J", type=_positive_int, default=None,
                        help="syntheses run in parallel (default: the available cores)")
    parser.add_argument("--fmax", action="store_true",
                        help="also place and route every lane with nextpnr-ecp5 (LFE5U-85F, "
                             "out of context) and report Fmax; slow: about 2 minutes per lane "
                             "at N=576 on 2 cores, far longer at N=4608")
    engines = parser.add_argument_group(
        "stage engines", "--engines adds, per stage and form, the whole stage engine (four "
        "blocks) synthesised for --target, placed and routed on an ECP5-85F for Fmax, its "
        "cycles per image and images per second, and engines.png. Slow when not cached: "
        "tens of minutes per stage on 2 cores; see docs/benchmarks.md.")
    engines.add_argument("--engines", action="store_true", help="add the stage engines")
    engines.add_argument("--engine-stages", metavar="S", nargs="+", type=int,
                         default=None, choices=[1, 2, 3, 4],
                         help="stages to build (default: 1 2 3 4)")
    engines.add_argument("--engine-lanes", metavar="P", type=_positive_int, default=None,
                         help=f"output channels per cycle (default {REPORT_KNOBS['lanes']})")
    engines.add_argument("--engine-bits-per-cycle", metavar="B[,B,B,B]", default=None,
                         help=f"window bits per lane and cycle, one for every stage or one per "
                              f"stage 1-4 (default "
                              f"{','.join(map(str, REPORT_KNOBS['bits_per_cycle']))})")
    engines.add_argument("--engine-post-lanes", metavar="Q", type=_positive_int, default=None,
                         help="post-popcount units (threshold / BN scale, shortcut add, RPReLU) "
                              "per block, shared by its P lanes, P/Q cycles per channel group "
                              f"(default {REPORT_KNOBS['post_lanes']}; Q = P: one per lane)")
    engines.add_argument("--engine-weight-ram", choices=("auto", "block", "logic"),
                         default=None,
                         help="the weight memories: auto (the synthesis tool's choice; Yosys "
                              "builds a block's small deep-and-wide weight ROM in LUTs on xc7), "
                              f"block (block RAM), logic (default {REPORT_KNOBS['weight_ram']})")
    engines.add_argument("--engine-constant-ram", choices=("auto", "block", "logic"),
                         default=None,
                         help="the per-group constant ROMs (RSign biases, threshold / BN and "
                              "RPReLU constants): auto (the synthesis tool's choice; Yosys "
                              "builds these small ROMs in LUTs on xc7), block, logic (default "
                              f"{REPORT_KNOBS['constant_ram']})")
    engines.add_argument("--engine-export", metavar="FILE", action="append", default=None,
                         help="a trained bincount-network export to build the engines of its "
                              "form from (repeat for both forms; default: the calibrated "
                              "engine-golden networks)")
    engines.add_argument("--engine-breakdown", action="store_true",
                         help="synthesise each engine with its parts kept as modules and "
                              "tabulate where the LUTs go (popcount trees, accumulators, "
                              "post-popcount units, line buffers, weight path, control, FIFO)")
    engines.add_argument("--engine-forms", metavar="FORM", nargs="+", default=None,
                         choices=["binarized", "baseline"],
                         help="forms to build (default: binarized baseline)")
    engines.add_argument("--engine-seeds", metavar="S", nargs="+", type=int_in(1, 2**31 - 1),
                         default=None, help="nextpnr seeds of each engine's Fmax (default: 1; "
                                            "with several, the median is reported and every "
                                            "seed kept)")
    engines.add_argument("--engine-no-fmax", action="store_true",
                         help="skip place and route of the engines")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run the Yosys / nextpnr jobs on the workers of a Dask "
                             "scheduler (e.g. tcp://HOST:8786; needs bincount[dask] and the "
                             "same tool packages on the workers); the cache and the progress "
                             "lines stay on this machine; --jobs defaults to the cluster's "
                             "threads")
    network = parser.add_argument_group(
        "whole network", "--network adds the whole design (stem, the four stage engines, head) "
        "in both forms at one fold: resources and DSP per part synthesised for --target with "
        "each part kept as a module, Fmax on an ECP5-85F (nextpnr, out of context, median of "
        "--network-seeds), cycles and images per second, and the post-popcount multiplies of "
        "both forms. Knobs: --network-lanes / --network-bits-per-cycle / --network-stem-lanes, "
        "or the fold planner's choice for ecp5-85f at --network-target-fps. Slow when not "
        "cached; see docs/benchmarks.md.")
    network.add_argument("--network", action="store_true", help="add the whole network")
    network.add_argument("--network-export", metavar="FILE", action="append", default=None,
                         help="a bincount-network export (repeat for both forms; default: "
                              "networks/reactnet18_w0.25.npz; a form not given is a "
                              "calibrated network of the same width)")
    network.add_argument("--network-lanes", metavar="P[,P,P,P]", default=None,
                         help="lanes per stage (one value or one per stage)")
    network.add_argument("--network-bits-per-cycle", metavar="B[,B,B,B]", default=None,
                         help="window bits per lane and cycle, per stage")
    network.add_argument("--network-stem-lanes", metavar="P0", default=None,
                         help="the stem's lanes")
    network.add_argument("--network-target-fps", metavar="F", type=float_in(0, 1e9, True),
                         default=None, help="images per second the fold planner plans for on "
                                            "ecp5-85f (default 1000, at --network-clock-mhz)")
    network.add_argument("--network-clock-mhz", metavar="MHZ", type=float_in(0, 1e4, True),
                         default=None, help="clock the planner assumes (default 100)")
    network.add_argument("--network-seeds", metavar="S", nargs="+", type=int_in(1, 2**31 - 1),
                         default=None, help="nextpnr seeds of the Fmax (default: 1 2 3; the "
                                            "median is reported)")
    network.add_argument("--network-no-fmax", action="store_true",
                         help="skip place and route of the network")
    parser.add_argument("--no-cache", action="store_true",
                        help="ignore cached results (they are still refreshed)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def _engine_knobs(args, stages):
    """The engine knobs of the command line for the engines of ``stages``, refused with one
    line (bad knobs, unreadable exports) before any synthesis."""
    from bincount.gateware.stage_engine import stage_layers
    from bincount.hw.engine_report import check_knobs_for_stages
    from bincount.hw.knobs import report_knobs
    from bincount.hw.network_cli import parse_ints
    from bincount.model.export.network_file import load_export

    bits = args.engine_bits_per_cycle
    if bits is not None:
        bits = parse_ints("engine-bits-per-cycle", bits)
    knobs = report_knobs({"lanes": "--engine-lanes",
                          "bits_per_cycle": "--engine-bits-per-cycle",
                          "post_lanes": "--engine-post-lanes",
                          "weight_ram": "--engine-weight-ram",
                          "constant_ram": "--engine-constant-ram"},
                         lanes=args.engine_lanes, bits_per_cycle=bits,
                         post_lanes=args.engine_post_lanes, weight_ram=args.engine_weight_ram,
                         constant_ram=args.engine_constant_ram)
    for path in args.engine_export or ():
        export = load_export(path)
        knobs.validate([export], [n for s in stages for n in stage_layers(export, s)])
    return check_knobs_for_stages(knobs, stages)


ENGINE_OPTIONS = ("engine_stages", "engine_lanes", "engine_bits_per_cycle", "engine_post_lanes",
                  "engine_weight_ram", "engine_constant_ram", "engine_export", "engine_breakdown", "engine_forms",
                  "engine_seeds", "engine_no_fmax")


def _engines(args):
    """The keyword arguments of :func:`bincount.hw.engine_report.build_engine_section` from the
    command line, checked with one line before any synthesis."""
    from bincount.errors import BincountError

    for opt in ("engine_stages", "engine_forms", "engine_seeds"):
        vals = getattr(args, opt) or []
        if len(set(vals)) != len(vals):
            raise BincountError(f"--{opt.replace('_', '-')} {' '.join(map(str, vals))}: a value "
                                f"is given twice; expected distinct values")
    if args.engine_no_fmax and args.engine_seeds:
        raise BincountError("--engine-seeds does not apply with --engine-no-fmax")
    forms = args.engine_forms or ["binarized", "baseline"]
    stages = sorted(args.engine_stages or [1, 2, 3, 4])
    return {"stages": stages, "knobs": _engine_knobs(args, stages),
            "exports": args.engine_export, "fmax": not args.engine_no_fmax,
            "breakdown": args.engine_breakdown,
            "forms": [f for f in ("binarized", "baseline") if f in forms],
            "seeds": args.engine_seeds or [1]}


NETWORK_OPTIONS = ("network_export", "network_lanes", "network_bits_per_cycle",
                   "network_stem_lanes", "network_target_fps", "network_clock_mhz",
                   "network_seeds", "network_no_fmax")


def _network(args):
    """The keyword arguments of :func:`bincount.hw.network_report.build_network_section` from
    the command line, checked with one line (bad or conflicting knobs, unreadable exports, a
    plan that does not fit) before any synthesis."""
    from bincount.errors import BincountError
    from bincount.hw.network_cli import parse_ints
    from bincount.hw.network_report import DEFAULT_CLOCK_MHZ, DEFAULT_TARGET_FPS, \
        network_knobs
    from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export

    knobs = {}
    for dest, key in (("network_lanes", "lanes"), ("network_bits_per_cycle", "bits_per_cycle"),
                      ("network_stem_lanes", "stem_lanes")):
        if getattr(args, dest) is not None:
            knobs[key] = parse_ints(dest.replace("_", "-"), getattr(args, dest))
    if isinstance(knobs.get("stem_lanes"), list):
        raise BincountError("--network-stem-lanes needs one integer")
    if knobs and (args.network_target_fps is not None or args.network_clock_mhz is not None):
        raise BincountError("give either --network-target-fps [--network-clock-mhz] (the fold "
                            "planner's knobs) or --network-lanes / --network-bits-per-cycle / "
                            "--network-stem-lanes, not both")
    seeds = args.network_seeds or [1, 2, 3]
    if len(set(seeds)) != len(seeds):
        raise BincountError(f"--network-seeds {' '.join(map(str, seeds))}: a seed is given "
                            f"twice; expected distinct seeds")
    if args.network_no_fmax and args.network_seeds:
        raise BincountError("--network-seeds does not apply with --network-no-fmax")
    exports = args.network_export or [str(DEFAULT_EXPORT)]
    if len(exports) > 2:
        raise BincountError(f"--network-export given {len(exports)} times; give at most one "
                            f"export per form (binarized, baseline)")
    metas = [export_meta(load_export(path)) for path in exports]
    forms = [m["form"] for m in metas]
    if len(set(forms)) != len(forms):
        raise BincountError(f"--network-export: two exports of form {forms[0]!r}; give at most "
                            f"one per form")
    fps = args.network_target_fps or DEFAULT_TARGET_FPS
    clock = args.network_clock_mhz or DEFAULT_CLOCK_MHZ
    network_knobs(metas[0], knobs or None, target_fps=fps, clock_mhz=clock)   # plan fits
    if knobs:
        from bincount.hw.network_cli import check_given_knobs

        check_given_knobs(load_export(exports[0]), knobs,   # before the synthesis
                          {k: "--network-" + k.replace("_", "-") for k in knobs})
    return {"exports": exports, "knobs": knobs or None, "target_fps": fps, "clock_mhz": clock,
            "seeds": seeds, "fmax": not args.network_no_fmax}


def run(args):
    from bincount.errors import BincountError
    from bincount.hw.executor import connect, using
    from bincount.hw.limits import MAX_N, N_HELP
    from bincount.hw.output_dir import check_output_dir
    from bincount.hw.report import build_report, write_report
    from bincount.options import refuse_given

    for width in args.widths:
        if width > MAX_N:
            raise BincountError(f"--widths {width} is out of range; expected {N_HELP} (the "
                                f"widest lane the Verilog conversion can build)")
    if not args.engines:
        refuse_given(args, ENGINE_OPTIONS, "applies with --engines only")
    if not args.network:
        refuse_given(args, NETWORK_OPTIONS, "applies with --network only")
    check_output_dir(args.output)      # before minutes of synthesis
    engines = None
    if args.engines:
        engines = _engines(args)
    network = _network(args) if args.network else None
    runner = connect(args.scheduler)    # one line if no scheduler answers, before any work
    try:
        with using(runner):
            report = build_report(args.target, args.widths, lanes=args.lanes, jobs=args.jobs,
                                  fmax=args.fmax, use_cache=not args.no_cache,
                                  progress=None if args.quiet else sys.stderr, engines=engines,
                                  whole_network=network)
    finally:
        runner.close()
    j_path, m_path = write_report(report, args.output)
    print(f"wrote {m_path} and {j_path}" + (" and engines.png" if engines is not None else ""))
    return 0
