"""Shortcut in the Amaranth simulator against the integer reference: an input map written as
beats, the folds of every group issued, the queued values equal the reference's shortcut
(identity, or the pooled concat downsample); ``latency`` from the last shortcut fold to the
head of the queue."""

import numpy as np
import pytest

from bincount.gateware.block_params import block_params, to_beats
from bincount.gateware.block_sequencer import fold_layout
from bincount.gateware.shortcut import Shortcut
from engine_cases import reference_tensors, run_cycles, tiny_export, unpack


def _beat_writes(x, p, size):
    """Input beats as residual line-buffer writes, row y in slot y."""
    inputs = []
    for k, beat in enumerate(to_beats(x, p.lanes)):
        pix, g = divmod(k, p.in_groups)
        inputs.append({"w.slot": pix // size, "w.x": pix % size, "w.sub": g, "w.data": beat,
                       "w.en": 1})
    return inputs + [{"w.en": 0}]


@pytest.mark.parametrize("cin, cout, stride, lanes", [(8, 8, 1, 4), (8, 16, 2, 4),
                                                      (16, 32, 2, 8)])
def test_latency_and_value_of_one_group(cin, cout, stride, lanes):
    size = 4
    ex = tiny_export(cin, cout, stride, size, "binarized", True, "pow2", 1, seed=cout)
    x = np.random.default_rng(cin).integers(-32768, 32768, (cin, size, size))
    p = block_params(ex, "stage1.conv1", lanes, 8)
    ref = reference_tensors(ex, x)["shortcut"]
    dut = Shortcut(p, depth=4)
    assert dut.latency == 8 and dut.reads == (4 if stride == 2 else 1)
    layout, K = fold_layout(p), 3 + stride
    g, oy, ox = p.out_groups - 1, p.out_size - 1, 1
    inputs = _beat_writes(x, p, size)
    for f in range(p.folds):
        fold = {"oy": oy, "ox": ox, "group": g, "fold": f, "top_slot": (K - 1 + oy * stride) % K}
        inputs.append({"issue": 1, "fold": layout.const(fold).as_value().value})
        if f == dut.reads - 1:
            t_last = len(inputs) - 1
    inputs.append({"issue": 0})
    out = run_cycles(dut, inputs, ["valid", "value"], extra=dut.latency)
    valid = [t for t, o in enumerate(out) if o["valid"]]
    assert valid[0] == t_last + dut.latency - 1            # then held: nothing takes it
    assert unpack(out[valid[0]]["value"], 16, lanes) == \
        ref[g * lanes:(g + 1) * lanes, oy, ox].tolist()


@pytest.mark.parametrize("cin, cout, stride, lanes", [(8, 8, 1, 4), (8, 16, 2, 4)])
def test_every_group_in_order(cin, cout, stride, lanes):
    """The head is taken as soon as it is valid: every group's value, in order."""
    from amaranth.sim import Simulator
    size = 4
    ex = tiny_export(cin, cout, stride, size, "binarized", True, "pow2", 1, seed=cout + 1)
    x = np.random.default_rng(cout).integers(-32768, 32768, (cin, size, size))
    p = block_params(ex, "stage1.conv1", lanes, 8)
    ref = reference_tensors(ex, x)["shortcut"]
    dut = Shortcut(p, depth=4)
    layout, K = fold_layout(p), 3 + stride
    want = [ref[g * lanes:(g + 1) * lanes, oy, ox].tolist()
            for oy in range(p.out_size) for ox in range(p.out_size)
            for g in range(p.out_groups)]
    got = []

    async def tb(ctx):
        for k, beat in enumerate(to_beats(x, lanes)):
            pix, g = divmod(k, p.in_groups)
            for port, v in ((dut.w.slot, pix // size), (dut.w.x, pix % size), (dut.w.sub, g),
                            (dut.w.data, beat), (dut.w.en, 1)):
                ctx.set(port, v)
            await ctx.tick()
        ctx.set(dut.w.en, 0)
        for oy in range(p.out_size):
            for ox in range(p.out_size):
                for g in range(p.out_groups):
                    for f in range(p.folds):
                        ctx.set(dut.issue, 1)
                        ctx.set(dut.fold, layout.const({"oy": oy, "ox": ox, "group": g,
                                                        "fold": f, "top_slot":
                                                        (K - 1 + oy * stride) % K}))
                        valid, value = ctx.get(dut.valid), ctx.get(dut.value)
                        ctx.set(dut.take, valid)
                        if valid:
                            got.append([int(value[q]) for q in range(lanes)])
                        await ctx.tick()
        ctx.set(dut.issue, 0)
        for _ in range(dut.latency + 2):
            valid, value = ctx.get(dut.valid), ctx.get(dut.value)
            ctx.set(dut.take, valid)
            if valid:
                got.append([int(value[q]) for q in range(lanes)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == want
