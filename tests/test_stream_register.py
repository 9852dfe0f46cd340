"""StreamRegister and PipeRegister in the Amaranth simulator: random gaps and stalls, every beat
once, in order, one cycle of latency, full rate without stalls."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.pipe_register import PipeRegister
from bincount.gateware.stream_register import StreamRegister

REGISTERS = [StreamRegister, PipeRegister]


def _run(cls, p_valid, p_ready, beats=300, seed=0):
    dut = cls(12)
    rng = np.random.default_rng(seed)
    data = [int(v) for v in rng.integers(0, 1 << 12, beats)]
    got, first_out = [], []

    async def tb(ctx):
        k, cycle = 0, 0
        while len(got) < beats and cycle < 20 * beats:
            valid = k < beats and rng.random() < p_valid
            ready = rng.random() < p_ready
            ctx.set(dut.i.valid, int(valid))
            ctx.set(dut.i.payload, data[k] if k < beats else 0)
            ctx.set(dut.o.ready, int(ready))
            await ctx.delay(1e-9)
            if ctx.get(dut.o.valid) and ready:
                got.append(ctx.get(dut.o.payload))
                first_out.append(cycle)
            if valid and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
            cycle += 1
        ctx.set(dut.i.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return data, got, first_out


@pytest.mark.parametrize("cls", REGISTERS)
@pytest.mark.parametrize("p_valid, p_ready", [(1.0, 1.0), (0.7, 0.7), (1.0, 0.3), (0.3, 1.0)])
def test_every_beat_once_in_order(cls, p_valid, p_ready):
    data, got, _ = _run(cls, p_valid, p_ready)
    assert got == data


@pytest.mark.parametrize("cls", REGISTERS)
def test_full_rate_and_one_cycle_latency(cls):
    data, got, cycles = _run(cls, 1.0, 1.0, beats=50)
    assert got == data
    assert cycles == list(range(1, 51))
    assert cls(4).latency == 1


@pytest.mark.parametrize("cls", REGISTERS)
def test_bad_width(cls):
    with pytest.raises(BincountError, match="width must be in"):
        cls(0)
