"""BankedRAM in the Amaranth simulator: several banks, reads two cycles later (three with the
ports registered per column), writes land in the right bank, initial contents; the per-column
registers kept apart by synthesis."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.banked_ram import BankedRAM


@pytest.mark.parametrize("width, port_registers, columns", [(12, False, 1), (80, False, 1),
                                                             (80, True, 3)])
def test_banks_read_write_and_init(width, port_registers, columns):
    depth = 11
    init = [(v * 0x9E3779B97F4A7C15) % (1 << width) for v in range(100, 100 + depth)]
    dut = BankedRAM(width, depth, init, bank_depth=4, port_registers=port_registers)
    assert dut.banks == 3 and dut.latency == 2 + port_registers
    assert len(dut.columns) == columns             # 80 bits in 36-bit RAMs: 3 columns
    model = list(init)
    rng = np.random.default_rng(0)
    checked = []

    async def tb(ctx):
        pending = []                                  # (cycle due, expected)
        for t in range(200):
            addr = int(rng.integers(depth))
            ctx.set(dut.r_addr, addr)
            write = rng.random() < 0.4
            w_addr = int(rng.integers(depth))
            w_data = int.from_bytes(rng.bytes(10), "little") % (1 << width)
            ctx.set(dut.w_en, int(write))
            ctx.set(dut.w_addr, w_addr)
            ctx.set(dut.w_data, w_data)
            pending.append((t + dut.latency, model[addr]))   # the writes before this read
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


def test_port_registers_are_kept_one_per_column(tmp_path):
    """A 1,024 x 128-bit RAM is 8 block RAMs of 1,024 x 18 side by side: with its ports
    registered it has 8 columns of 16 bits, each with its own read and write address, data and
    enable registers, and Yosys keeps all 8 copies (``opt_merge`` would make one of each)."""
    from amaranth.back import verilog
    from amaranth.utils import ceil_log2

    from bincount.hw.synth import synthesize

    ram = BankedRAM(128, 1024, port_registers=True)
    assert ram.banks == 1 and ram.columns == [(16 * c, 16 * c + 16) for c in range(8)]
    r = synthesize(verilog.convert(ram, name="ram"), "ram", "ecp5", cache_dir=tmp_path,
                   use_cache=False)
    ab = ceil_log2(1024)
    assert r["bram"] == 8
    # per column: read address, write address, write enable; the write data and the output
    # register once per bit (the output register may move into the block RAMs)
    assert r["ff"] in (8 * (2 * ab + 1) + 128 + 128, 8 * (2 * ab + 1) + 128)


def test_default_banks_fill_their_block_rams_without_a_multiplexer_inside():
    from bincount.gateware.banked_ram import bank_blocks, default_bank_depth, side_by_side

    # RAMs side by side with no multiplexer: the narrowest mode at least that deep
    assert [side_by_side(w, 512) for w in (1, 36, 37, 72, 512)] == [1, 1, 2, 2, 15]
    assert [side_by_side(9, d) for d in (512, 2048, 2049, 16384)] == [1, 1, 3, 9]
    assert side_by_side(1, 16385) is None
    # wide words: one bank of 1,024 x 18 RAMs (29) beats two banks of 512 x 36 (2 x 15);
    # 4,096 words: 2 banks of 2,048 x 9 (2 x 57) beat 4 of 1,024 (4 x 29) and 8 of 512 (8 x 15)
    assert default_bank_depth(512, 1024) == 16384 and bank_blocks(512, 1024, 16384) == 29
    assert bank_blocks(512, 1024, 512) == 30
    assert default_bank_depth(512, 4096) == 2048 and bank_blocks(512, 4096, 2048) == 114
    assert bank_blocks(512, 4096, 1024) == 116 and bank_blocks(512, 4096, 512) == 120
    # a stage-4 stride-1 block's weights (docs/engines.md, "Banks"): 3 banks of 2,048 (129)
    # instead of 9 of 512 (135)
    assert default_bank_depth(512, 4608) == 2048 and bank_blocks(512, 4608, 2048) == 129
    assert bank_blocks(512, 4608, 512) == 135
    assert BankedRAM(512, 4608, writable=False).banks == 3
    # a bank's RAMs sit side by side: 18,432 words of 4 bits are 5 RAMs in banks of 4,096,
    # 8,192 or 16,384 (16K x 1, 4 of them, and 2K x 9), more in shallower banks; of the ties
    # the fewest banks
    assert [bank_blocks(4, 18432, d) for d in (512, 1024, 2048, 4096, 8192, 16384)] == \
        [36, 18, 9, 5, 5, 5]
    narrow, wide = BankedRAM(4, 18432, writable=False), BankedRAM(512, 4096, writable=False)
    assert narrow.banks == 2 and wide.banks == 2
    assert BankedRAM(512, 1024, writable=False).banks == 1
    assert BankedRAM(512, 72, writable=False).banks == 1
    with pytest.raises(BincountError, match="bank_depth"):
        bank_blocks(4, 100, 32768)


@pytest.mark.parametrize("style", ["block", "logic"])
def test_style_asks_for_block_ram_or_logic(style):
    """``style`` puts the ``ram_style`` attribute on every bank; ``auto`` puts none."""
    from amaranth.back import verilog

    def text(s):
        return verilog.convert(BankedRAM(40, 1100, list(range(1100)), bank_depth=512,
                                         writable=False, style=s), name="r", emit_src=False)
    assert text(style).count(f'ram_style = "{style}"') == 3        # three banks of 512
    assert "ram_style" not in text("auto")


def test_bad_style_is_rejected():
    with pytest.raises(BincountError, match=r"style must be one of 'auto', 'block', 'logic', "
                                            r"got 'ultra'"):
        BankedRAM(8, 16, style="ultra")
