"""ECP5 resources of what the board core (``gateware/board_core.py``) adds around the network:
the UART receiver and transmitter, the two FIFOs, the protocol's frame receiver and reply
transmitter, each synthesised alone with Yosys ``synth_ecp5`` (the build layer's
:func:`bincount.hw.synth.synthesize`), at the default network's geometry and result width and
a UART divisor of 434 (50 MHz, 115,200 baud). The network itself is in the engine report and
the board build's utilisation. Replaces the "Board core: UART and protocol" section of
docs/benchmarks.md.

    python bench/board_core_size.py [--divisor 434] [--output docs/benchmarks.md]
"""

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench/board_core_size.py: begin -->"
END = "<!-- bench/board_core_size.py: end -->"


def parts(divisor):
    """``[(name, component)]`` of the board core's parts besides the network."""
    from amaranth.lib import wiring
    from amaranth.lib.fifo import SyncFIFOBuffered
    from amaranth.lib.wiring import In, Out

    from bincount import protocol as P
    from bincount.gateware.board_core import RX_FIFO_DEPTH, TICKET_DEPTH, BoardCore
    from bincount.gateware.frame_receiver import RX_LAYOUT, TICKET_LAYOUT, FrameReceiver
    from bincount.gateware.reply_transmitter import ReplyTransmitter
    from bincount.gateware.uart_rx import UartRx
    from bincount.gateware.uart_tx import UartTx
    from bincount.model.export.network_file import DEFAULT_EXPORT, load_export

    class Fifo(wiring.Component):
        """A SyncFIFOBuffered with ports (for the Verilog conversion)."""

        def __init__(self, width, depth):
            self.width, self.depth = width, depth
            super().__init__({"w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
                              "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1)})

        def elaborate(self, platform):
            from amaranth.hdl import Module
            m = Module()
            m.submodules.fifo = f = SyncFIFOBuffered(width=self.width, depth=self.depth)
            m.d.comb += [f.w_data.eq(self.w_data), f.w_en.eq(self.w_en),
                         self.w_rdy.eq(f.w_rdy), self.r_data.eq(f.r_data),
                         f.r_en.eq(self.r_en), self.r_rdy.eq(f.r_rdy)]
            return m

    export = load_export(DEFAULT_EXPORT)
    core = BoardCore(export, divisor=divisor)
    head = core.network.head
    return [
        ("UartRx", UartRx(divisor)),
        ("UartTx", UartTx(divisor)),
        (f"receive FIFO ({RX_FIFO_DEPTH} x {RX_LAYOUT.size})", Fifo(RX_LAYOUT.size, RX_FIFO_DEPTH)),
        ("FrameReceiver", FrameReceiver(core.image_bytes, core.timeout_bytes * 10 * divisor,
                                        P.MAX_IN_FLIGHT, TICKET_DEPTH)),
        (f"ticket FIFO ({TICKET_DEPTH} x {TICKET_LAYOUT.size})", Fifo(TICKET_LAYOUT.size,
                                                                     TICKET_DEPTH)),
        ("ReplyTransmitter", ReplyTransmitter(core.info, head.result_layout, core.classes,
                                              core.logit_bits, core.image_bytes)),
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--divisor", type=int, default=434)
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                   help="markdown file whose section is replaced ('-' prints only)")
    args = p.parse_args(argv)

    from bincount.fileio import replace_marked_section
    from bincount.hw.emit import verilog_text
    from bincount.hw.synth import synthesize

    rows, t0 = [], time.monotonic()
    total = {k: 0 for k in ("lut", "ff", "carry", "dsp", "bram")}
    yosys = ""
    for name, comp in parts(args.divisor):
        top = "bench_" + "".join(c if c.isalnum() else "_" for c in name.split(" (")[0])
        res = synthesize(verilog_text(comp, top), top, "ecp5", use_cache=False)
        yosys = res["yosys"]
        rows.append((name, res))
        for k in total:
            total[k] += res[k]
        print(f"{name}: {res['lut']} LUT4, {res['ff']} FF, {res['carry']} CCU2, "
              f"{res['bram']} DP16KD ({res['seconds']} s)", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    lines = [BEGIN, "## Board core: UART and protocol", "",
             f"`python bench/board_core_size.py --divisor {args.divisor}` "
             f"({datetime.date.today().isoformat()}, commit {commit}, {yosys}): each part of "
             f"`BoardCore` besides the network synthesised alone with `synth_ecp5` (default "
             f"network's image and result sizes; divisor {args.divisor} = 115,200 baud at "
             f"50 MHz), {time.monotonic() - t0:.0f} s.", "",
             "| part | LUT4 | FF | CCU2 | DP16KD |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in rows:
        lines.append(f"| {name} | {r['lut']} | {r['ff']} | {r['carry']} | {r['bram']} |")
    lines.append(f"| **total** | **{total['lut']}** | **{total['ff']}** | **{total['carry']}** "
                 f"| **{total['bram']}** |")
    lines += ["", "The network (stem, stages, head) comes on top; its figures are in the engine "
                  "report and in the board build's utilisation.", END]
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        print(text)
    else:
        replace_marked_section(args.output, BEGIN, END, text)
        print(f"wrote the section to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
