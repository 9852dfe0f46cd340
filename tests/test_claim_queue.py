"""ClaimQueue in the Amaranth simulator: random gaps and claims, every word once and in order on
``data`` the cycle after its claim, never claimable when empty, one word per cycle at full
rate."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.claim_queue import ClaimQueue


def _run(p_valid, p_claim, words=300, seed=0):
    dut = ClaimQueue(12)
    rng = np.random.default_rng(seed)
    data = [int(v) for v in rng.integers(0, 1 << 12, words)]
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


def test_full_rate_after_two_cycles():
    data, got, cycles = _run(1.0, 1.0, words=50)
    assert got == data
    assert cycles == list(range(2, 52))           # written at 0, claimed at 1, data at 2


def test_bad_width():
    with pytest.raises(BincountError, match="width must be in"):
        ClaimQueue(0)
