"""ClaimQueue in the Amaranth simulator: random gaps and claims, every word once and in order on
``data`` the cycle after its claim, never claimable when empty, one word per cycle at full
rate; the write and read control copied per slice of the word, and the copies kept apart by
synthesis."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from amaranth.back import verilog
from amaranth.utils import ceil_log2

from bincount.errors import BincountError
from bincount.gateware.claim_queue import DEPTH, SLICE_BITS, ClaimQueue
from bincount.hw.synth import synthesize


def _run(p_valid, p_claim, words=300, seed=0, width=12):
    dut = ClaimQueue(width)
    rng = np.random.default_rng(seed)
    data = [int.from_bytes(rng.bytes(-(-width // 8)), "little") % (1 << width)
            for _ in range(words)]
    got, cycles = [], []

    async def tb(ctx):
        k, cycle, claimed_last = 0, 0, False
        while len(got) < words and cycle < 20 * words:
            valid = k < words and rng.random() < p_valid
            ctx.set(dut.i.valid, int(valid))
            ctx.set(dut.i.payload, data[k] if k < words else 0)
            await ctx.delay(1e-9)
            if claimed_last:                      # the word claimed last cycle is on data
                got.append(ctx.get(dut.data))
                cycles.append(cycle)
            claim = bool(ctx.get(dut.claimable)) and rng.random() < p_claim
            assert len(got) + claim <= k, "claimable with no unclaimed word"
            ctx.set(dut.claim, int(claim))
            if valid and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
            claimed_last = claim
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return data, got, cycles


@pytest.mark.parametrize("p_valid, p_claim", [(1.0, 1.0), (0.7, 0.7), (1.0, 0.3), (0.3, 1.0)])
def test_every_word_once_in_order(p_valid, p_claim):
    data, got, _ = _run(p_valid, p_claim)
    assert got == data


@pytest.mark.parametrize("p_valid, p_claim", [(1.0, 1.0), (0.6, 0.8), (0.8, 0.4)])
def test_sliced_word_once_in_order(p_valid, p_claim):
    width = 3 * SLICE_BITS - 2                    # three slices, one a bit narrower
    sl = ClaimQueue(width).slices
    assert len(sl) == 3 and [hi - lo for lo, hi in sl] == [SLICE_BITS - 1, SLICE_BITS - 1,
                                                            SLICE_BITS]
    data, got, _ = _run(p_valid, p_claim, words=120, seed=3, width=width)
    assert got == data


def test_slices_cover_the_word():
    for width in (1, 12, SLICE_BITS, SLICE_BITS + 1, 1024, 1031):
        sl = ClaimQueue(width).slices
        assert sl[0][0] == 0 and sl[-1][1] == width
        assert all(a[1] == b[0] for a, b in zip(sl, sl[1:]))
        assert max(hi - lo for lo, hi in sl) <= SLICE_BITS
        assert len(sl) == -(-width // SLICE_BITS)


def test_synthesis_keeps_every_copy_of_the_control(tmp_path):
    """On the ECP5 the words are LUT RAM (no word flip-flops, so no enable to hundreds of
    them), and Yosys keeps the staged write enable and address of every slice (merged copies
    would put one enable on every RAM cell again): flip-flops = per slice (staged data,
    enable, address; read pointer) + held, write pointer, unclaimed, take."""
    q = ClaimQueue(3 * SLICE_BITS)
    r = synthesize(verilog.convert(q, name="cq"), "cq", "ecp5", cache_dir=tmp_path,
                   use_cache=False)
    ptr, count = ceil_log2(DEPTH), ceil_log2(DEPTH + 1)
    assert len(q.slices) == 3
    assert r["ff"] == 3 * (SLICE_BITS + 1 + 2 * ptr) + count + ptr + count + 1
    assert r["other_cells"].get("TRELLIS_DPR16X4") == 3 * SLICE_BITS // 4


def test_full_rate_after_two_cycles():
    data, got, cycles = _run(1.0, 1.0, words=50)
    assert got == data
    assert cycles == list(range(2, 52))           # written at 0, claimed at 1, data at 2


def test_bad_width():
    with pytest.raises(BincountError, match="width must be in"):
        ClaimQueue(0)
