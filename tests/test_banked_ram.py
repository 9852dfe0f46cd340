"""BankedRAM in the Amaranth simulator: several banks, reads two cycles later, writes land in
the right bank, initial contents."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.banked_ram import BankedRAM


def test_banks_read_write_and_init():
    depth, width = 11, 12
    init = list(range(100, 100 + depth))
    dut = BankedRAM(width, depth, init, bank_depth=4)
    assert dut.banks == 3 and dut.latency == 2
    model = list(init)
    rng = np.random.default_rng(0)
    checked = []

    async def tb(ctx):
        pending = []                                  # (cycle due, expected)
        for t in range(200):
            addr = int(rng.integers(depth))
            ctx.set(dut.r_addr, addr)
            write = rng.random() < 0.4
            w_addr, w_data = int(rng.integers(depth)), int(rng.integers(1 << width))
            ctx.set(dut.w_en, int(write))
            ctx.set(dut.w_addr, w_addr)
            ctx.set(dut.w_data, w_data)
            pending.append((t + 2, model[addr]))      # read-before-write in the same cycle
            await ctx.tick()
            if write:
                model[w_addr] = w_data
            while pending and pending[0][0] == t + 1:
                due, want = pending.pop(0)
                got = ctx.get(dut.r_data)
                assert got == want, (t, got, want)
                checked.append(got)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(checked) > 190


def test_default_banks_fill_one_block_ram():
    from bincount.gateware.banked_ram import block_depth

    assert [block_depth(w) for w in (1, 2, 3, 4, 5, 9, 10, 18, 19, 36, 37, 512)] == \
        [16384, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512, 512, 512, 512]
    narrow, wide = BankedRAM(4, 18432, writable=False), BankedRAM(64, 1024, writable=False)
    assert narrow.banks == 5                                         # 4,096 words of 4 bits each
    assert wide.banks == 2                                           # 512 words of > 36 bits


@pytest.mark.parametrize("style", ["block", "logic"])
def test_style_asks_for_block_ram_or_logic(style):
    """``style`` puts the ``ram_style`` attribute on every bank; ``auto`` puts none."""
    from amaranth.back import verilog

    def text(s):
        return verilog.convert(BankedRAM(40, 1100, list(range(1100)), writable=False, style=s),
                               name="r", emit_src=False)
    assert text(style).count(f'ram_style = "{style}"') == 3        # three banks of 512
    assert "ram_style" not in text("auto")


def test_bad_style_is_rejected():
    with pytest.raises(BincountError, match=r"style must be one of 'auto', 'block', 'logic', "
                                            r"got 'ultra'"):
        BankedRAM(8, 16, style="ultra")
