"""xc7 LUTs of the parts whose figures docs/benchmarks.md and docs/engines.md quote from a
synthesis of the part alone: the RPReLU unit (8 lanes and 1 lane; the shift form for every
exponent, the shift form built for -4..-1 without negative slopes, the multiply form), a
stage-1 block's weight ROM (72 words of 512 bits) and its three constant ROMs (RSign biases
8 x 128, conv constants 64 x 42 and RPReLU constants 64 x 38 at Q = 1) left to Yosys or in
block RAM, and the parts of a stage-1 block's 128-bit input: the skid-buffer stream register,
the pipe register, and a 3-cycle delay line (the wait for the biases before they were fetched
ahead); and a stage-1 block's conv output and RPReLU, each with its constant ROM, at Q = 1 with
the constants in block RAM, in both forms (engine-golden networks, seed 0).

    python bench/unit_luts.py

Each part is converted to Verilog and synthesised with ``synth_xilinx`` (the report's xc7
flow, no cache); the table goes to stdout.
"""

import random
import sys

from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bincount.gateware._common import delay
from bincount.gateware.banked_ram import BankedRAM
from bincount.gateware.block_params import block_params
from bincount.gateware.constant_rom import ConstantROM
from bincount.gateware.conv_output import ConvOutput
from bincount.gateware.pipe_register import PipeRegister
from bincount.gateware.rprelu_lanes import RPReLULanes
from bincount.gateware.rprelu_unit import RPReLUUnit
from bincount.gateware.stream_register import StreamRegister
from bincount.hw.synth import synthesize
from bincount.model.export.engine_golden import engine_golden


class _DelayLine(wiring.Component):
    """``o`` = ``i`` three cycles later, through :func:`delay` (no reset)."""

    def __init__(self, width):
        super().__init__({"i": In(width), "o": Out(width)})

    def elaborate(self, platform):
        from amaranth.hdl import Module
        m = Module()
        m.d.comb += self.o.eq(delay(m, self.i, 3, "line"))
        return m


def _row(name, dut):
    r = synthesize(verilog.convert(dut, name="part", emit_src=False), "part", "xc7",
                   use_cache=False)
    srl = sum(n for cell, n in r["cells"].items() if cell.startswith("SRL"))
    print(f"| {name} | {r['lut']:,} | {srl:,} | {r['ff']:,} | {r['dsp']} | {r['bram']} |",
          flush=True)


def main():
    print("| part | LUT | of which SRL16E | FF | DSP48E1 | BRAM18 |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |")
    for lanes in (8, 1):
        _row(f"RPReLU, {lanes} lane(s), shift, every exponent", RPReLUUnit(lanes, "shift"))
        _row(f"RPReLU, {lanes} lane(s), shift for -4..-1, no negative slope",
             RPReLUUnit(lanes, "shift", exponents=(-4, -1), negative_slopes=False))
        _row(f"RPReLU, {lanes} lane(s), multiply", RPReLUUnit(lanes, "multiply"))
    rnd = random.Random(1)
    words = [rnd.getrandbits(512) for _ in range(72)]
    for style in ("auto", "block"):
        _row(f"weight ROM 72 x 512, style {style}",
             BankedRAM(512, 72, words, writable=False, style=style))
    for depth, width, what in ((8, 128, "RSign biases"), (64, 42, "conv constants"),
                               (64, 38, "RPReLU constants")):
        words = [rnd.getrandbits(width) for _ in range(depth)]
        for style in ("auto", "block"):
            _row(f"constant ROM {depth} x {width} ({what}), style {style}",
                 ConstantROM(width, words, style=style))
    _row("stream register (skid buffer), 128 bits", StreamRegister(128))
    _row("pipe register, 128 bits", PipeRegister(128))
    _row("delay line, 3 cycles x 128 bits", _DelayLine(128))
    for form in ("binarized", "baseline"):
        export, _ = engine_golden(form, seed=0)
        q = block_params(export, "stage1.conv2", 8, 64, post_lanes=1, weight_ram="block",
                         constant_ram="block").post_params()
        _row(f"stage-1 block's conv output with its constant ROM, Q = 1, block RAM, {form}",
             ConvOutput(q))
        _row(f"stage-1 block's RPReLU with its constant ROM, Q = 1, block RAM, {form}",
             RPReLULanes(q))
    return 0


if __name__ == "__main__":
    sys.exit(main())
