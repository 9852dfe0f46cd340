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

TARGET_CHOICES = ("xc7", "ecp5", "ice40")   # = bincount.hw.synth.TARGETS (checked in tests)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_arguments(parser):
    parser.epilog = ("Results are cached by content under build/cache/ (set BINCOUNT_CACHE_DIR "
                     "to move it): a second run with the same inputs takes about a second.")
    parser.add_argument("-o", "--output", metavar="DIR", default="build/report",
                        help="directory for report.md and report.json (default: build/report)")
    parser.add_argument("--target", default="xc7", choices=TARGET_CHOICES,
                        help="synthesis target: xc7 (synth_xilinx -family xc7), ecp5 "
                             "(synth_ecp5) or ice40 (synth_ice40 -dsp); default xc7")
    parser.add_argument("--widths", metavar="N", nargs="+", type=_positive_int,
                        default=[576, 1152, 2304, 4608],
                        help="lane widths N = k*k*Cin (default: 576 1152 2304 4608, the "
                             "ReActNet-18 stages)")
    parser.add_argument("--lanes", metavar="L", type=_positive_int, default=64,
                        help="parallel lanes per stage in the network-wide estimate "
                             "(default 64)")
    parser.add_argument("--jobs", "-j", metavar="J", type=_positive_int, default=None,
                        help="syntheses run in parallel (default: the available cores)")
    parser.add_argument("--fmax", action="store_true",
                        help="also place and route every lane with nextpnr-ecp5 (LFE5U-85F, "
                             "out of context) and report Fmax; slow: about 2 minutes per lane "
                             "at N=576 on 2 cores, far longer at N=4608")
    parser.add_argument("--no-cache", action="store_true",
                        help="ignore cached results (they are still refreshed)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def run(args):
    from bincount.hw.report import build_report, check_output_dir, write_report

    check_output_dir(args.output)      # before minutes of synthesis
    report = build_report(args.target, args.widths, lanes=args.lanes, jobs=args.jobs,
                          fmax=args.fmax, use_cache=not args.no_cache,
                          progress=None if args.quiet else sys.stderr)
    j_path, m_path = write_report(report, args.output)
    print(f"wrote {m_path} and {j_path}")
    return 0
