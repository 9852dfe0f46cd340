"""xc7 LUTs of the parts whose figures docs/benchmarks.md and docs/engines.md quote from a
synthesis of the part alone: the RPReLU unit (8 lanes and 1 lane; the shift form for every
exponent, the shift form built for -4..-1 without negative slopes, the multiply form) and a
stage-1 block's weight ROM (72 words of 512 bits) left to Yosys or in block RAM.

    python bench/unit_luts.py

Each part is converted to Verilog and synthesised with ``synth_xilinx`` (the report's xc7
flow, no cache); the table goes to stdout.
"""

import random
import sys

from amaranth.back import verilog

from bincount.gateware.banked_ram import BankedRAM
from bincount.gateware.rprelu_unit import RPReLUUnit
from bincount.hw.synth import synthesize


def _row(name, dut):
    r = synthesize(verilog.convert(dut, name="part", emit_src=False), "part", "xc7",
                   use_cache=False)
    print(f"| {name} | {r['lut']:,} | {r['ff']:,} | {r['dsp']} | {r['bram']} |", flush=True)


def main():
    print("| part | LUT | FF | DSP48E1 | BRAM18 |\n| --- | ---: | ---: | ---: | ---: |")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
