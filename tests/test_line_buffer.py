"""LineBuffer in the Amaranth simulator: raster writes into row slots, random reads two cycles
later, padded reads give the fill word, slots are reused modulo ``rows``."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.line_buffer import LineBuffer


@pytest.mark.parametrize("width, rows, bits, subwords, fill, areg", [
    (5, 4, 12, 1, 0xFFF, False), (4, 5, 16, 4, 0, False), (3, 3, 1, 2, 1, False),
    (4, 4, 8, 2, None, False), (5, 4, 12, 1, 0xFFF, True), (4, 4, 8, 2, None, True)])
def test_reads_return_what_was_written(width, rows, bits, subwords, fill, areg):
    dut = LineBuffer(width, rows, bits, subwords, fill, address_register=areg)
    assert dut.latency == 2 + areg
    rng = np.random.default_rng(width * rows)
    image_rows = 2 * rows + 1                       # slots are reused
    data = rng.integers(0, 1 << bits, (image_rows, width, subwords))
    checked = []

    async def tb(ctx):
        for y in range(image_rows):
            for x in range(width):
                for s in range(subwords):
                    ctx.set(dut.w_slot, y % rows)
                    ctx.set(dut.w_x, x)
                    ctx.set(dut.w_sub, s)
                    ctx.set(dut.w_data, int(data[y, x, s]))
                    ctx.set(dut.w_en, 1)
                    await ctx.tick()
            ctx.set(dut.w_en, 0)
            if not areg:
                await ctx.tick()                    # the last write lands (write latency 1)
            # read back random words of the rows still held (and some padded reads); the
            # first read is of the last word written, with the read address presented as early
            # as the docstring allows (2 cycles after its w_en, 1 with the address register)
            for k in range(2 * width):
                yy = int(rng.integers(max(0, y - rows + 1), y + 1))
                x, s = int(rng.integers(width)), int(rng.integers(subwords))
                pad = fill is not None and rng.random() < 0.2
                if k == 0:
                    yy, x, s, pad = y, width - 1, subwords - 1, False
                ctx.set(dut.r_slot, yy % rows)
                ctx.set(dut.r_x, x)
                ctx.set(dut.r_sub, s)
                ctx.set(dut.r_pad, int(pad))
                await ctx.tick()
                # another address while the read is under way: only the one presented counts
                ctx.set(dut.r_slot, int(rng.integers(rows)))
                ctx.set(dut.r_x, int(rng.integers(width)))
                ctx.set(dut.r_sub, int(rng.integers(subwords)))
                ctx.set(dut.r_pad, 0)
                for _ in range(dut.latency - 1):
                    await ctx.tick()
                got = ctx.get(dut.r_data)
                want = fill if pad else int(data[yy, x, s])
                assert got == want, (yy, x, s, pad, got, want)
                checked.append(got)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(checked) == image_rows * 2 * width
    assert dut.depth == rows * width * subwords


@pytest.mark.parametrize("args, message", [
    ((0, 4, 8), "width must be in"), ((4, 4, 8, 3), "subwords must be a power of two"),
    ((4, 4, 8, 1, 256), "fill must be an integer in 0..2\\*\\*8-1"),
    ((4, 65, 8), "rows must be in")])
def test_bad_parameters(args, message):
    with pytest.raises(BincountError, match=message):
        LineBuffer(*args)
