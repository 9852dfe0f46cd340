"""``bincount build --board ulx3s-85f``: the network on a ULX3S (LFE5U-85F, CABGA381) as a
bitstream, built with the PyPI tools alone (:mod:`bincount.hw.ecp5_board_flow`).

The design is :class:`~bincount.gateware.ulx3s_top.Ulx3sTop` around
:class:`~bincount.gateware.board_core.BoardCore` (UART in, the network, UART and LEDs out),
with

- the clock: ``--clock-mhz`` (default :data:`DEFAULT_CLOCK_MHZ`) made by the PLL from the
  25 MHz oscillator (:func:`~bincount.gateware.ecp5_pll.pll_params`; the PLL's nearest frequency
  is the one used and reported);
- the UART: ``--baud`` (default :data:`DEFAULT_BAUD`), clock cycles per bit
  ``divisor = round(f_clk / baud)`` (:func:`~bincount.gateware.board_core.divisor_for`, which
  refuses a rate the divisor misses by more than its tolerance);
- the knobs: ``--lanes`` / ``--bits-per-cycle`` / ``--stem-lanes`` as ``generate network``, or
  else the fold planner's choice for ``ecp5-85f`` at the clock and at the image rate the UART can
  feed (``baud / 10 / 3072`` images per second: 3,072 image bytes of 10 line bits each), which
  is the slowest, smallest folding that keeps pace with the line.

Every option is checked (and the export read, and the knobs checked on the network) before any
tool runs. Writes the files of :data:`~bincount.hw.ecp5_board_flow.PRODUCTS` into the output
folder and prints the timing and utilisation lines.
"""

import sys
from pathlib import Path

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from bincount.errors import BincountError
from bincount.gateware.board_core import BoardCore, divisor_for
from bincount.gateware.ecp5_pll import pll_params
from bincount.gateware.ulx3s_top import OSCILLATOR_MHZ, Ulx3sTop
from bincount.hw.ecp5_board_flow import PRODUCTS, build_ecp5_bitstream
from bincount.hw.fold_plan import plan_network
from bincount.hw.network_cli import check_given_knobs, given_knobs
from bincount.hw.network_emit import export_digest
from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export

__all__ = ["build_board", "build_ulx3s", "planned_knobs", "summary_lines", "DEFAULT_CLOCK_MHZ",
           "DEFAULT_BAUD", "IMAGE_BYTES", "TOP_NAME", "BOARD"]

BOARD = "ulx3s-85f"
#: Default clock of the network (MHz): well below the Fmax the placed design reaches
#: (docs/benchmarks.md, "ULX3S bitstream"); the UART, not the clock, bounds the image rate.
DEFAULT_CLOCK_MHZ = 50
#: Default UART bit rate (8N1).
DEFAULT_BAUD = 115200
#: Bytes of one image on the line (32 x 32 pixels, R G B).
IMAGE_BYTES = 32 * 32 * 3
TOP_NAME = "bincount_ulx3s"


def planned_knobs(export, clock_mhz, baud):
    """``(knobs, plan)``: the fold planner's knobs for ``ecp5-85f`` at ``clock_mhz`` and the
    image rate of a ``baud`` line (module docstring)."""
    fps = baud / 10 / IMAGE_BYTES
    plan = plan_network(export_meta(export), "ecp5-85f", fps, clock_mhz)
    streamed = [p["name"] for p in plan["parts"] if p.get("weights") == "stream"]
    if streamed:
        raise BincountError(f"the ecp5-85f plan streams the weights of {', '.join(streamed)}; "
                            f"the board holds every weight on chip; give a narrower export")
    stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
    knobs = {"lanes": [p["lanes"] for p in stages],
             "bits_per_cycle": [p["bits_per_cycle"] for p in stages],
             "stem_lanes": plan["parts"][0]["lanes"]}
    return knobs, plan


def build_ulx3s(core, pll, out_dir, *, seed=1, info=None, stream=sys.stdout):
    """Build ``core`` (ports ``uart_rx``, ``uart_tx``, ``leds``) on the ULX3S-85F with the PLL
    setting ``pll`` into ``out_dir``; return the summary (raises on a failure or missed
    timing, :mod:`bincount.hw.ecp5_board_flow`)."""
    info = {"board": BOARD, **(info or {}), "pll": pll.as_dict()}
    return build_ecp5_bitstream(ULX3S_85F_Platform(), Ulx3sTop(core, pll), TOP_NAME, out_dir,
                                seed=seed, info=info, expect_mhz=float(pll.f_out),
                                stream=stream)


def build_board(args, out_dir):
    clock_mhz = DEFAULT_CLOCK_MHZ if args.clock_mhz is None else args.clock_mhz
    pll = pll_params(OSCILLATOR_MHZ, clock_mhz)
    clock_hz = float(pll.f_out) * 1e6
    baud = DEFAULT_BAUD if args.baud is None else args.baud
    divisor = divisor_for(clock_hz, baud)
    actual_baud = clock_hz / divisor
    seed = 1 if args.seed is None else args.seed
    knobs = given_knobs(args)
    export_path = str(DEFAULT_EXPORT) if args.export is None else args.export
    export = load_export(export_path)
    plan = None
    if knobs:
        check_given_knobs(export, knobs)
    else:
        knobs, plan = planned_knobs(export, float(pll.f_out), baud)
    core = BoardCore(export, divisor=divisor, **knobs)      # knobs checked before any tool
    shown = export_path if args.export is not None else \
        f"networks/{DEFAULT_EXPORT.name} (the default)"
    info = {"network": f"{shown} (digest {export_digest(export)[:10]})",
            "knobs": {"stem_lanes": core.network.stem_lanes, "lanes": core.network.lanes,
                      "bits_per_cycle": core.network.bits_per_cycle},
            "cycles_per_image": core.network.ideal_cycles,
            "clock": f"{float(pll.f_out):g} MHz (PLL from {OSCILLATOR_MHZ} MHz: CLKI_DIV "
                     f"{pll.clki_div}, CLKFB_DIV {pll.clkfb_div}, CLKOP_DIV {pll.clkop_div}, "
                     f"VCO {float(pll.f_vco):g} MHz)",
            "uart": f"{baud} baud requested, {actual_baud:,.0f} baud ({divisor} cycles per bit)",
            "clock_mhz": float(pll.f_out), "baud": baud, "uart_divisor": divisor}
    if plan is not None:
        info["plan"] = plan
    if float(pll.f_out) != clock_mhz:
        print(f"clock: {clock_mhz:g} MHz asked, the PLL gives {float(pll.f_out):g} MHz")
    summary = build_ulx3s(core, pll, out_dir, seed=seed, info=info)
    for line in summary_lines(summary):
        print(line)
    for name in PRODUCTS:
        print(Path(out_dir) / name.format(name=TOP_NAME))
    return 0


def summary_lines(summary):
    """The lines ``build`` prints after a successful build."""
    lines = []
    for clk, v in sorted(summary["fmax"].items()):
        lines.append(f"timing {summary['timing']}: {clk} {v['achieved_mhz']:.2f} MHz achieved, "
                     f"{v['constraint_mhz']:.2f} MHz constraint")
    u = summary["utilisation"]
    parts = [f"{bel} {u[bel]['used']:,}/{u[bel]['available']:,}"
             for bel in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D") if bel in u]
    lines.append("utilisation: " + ", ".join(parts))
    return lines
