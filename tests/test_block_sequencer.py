"""BlockSequencer in the Amaranth simulator: the folds of an image in the order of the
reference loop (output pixel, channel group, fold; weight word ``g*F + f``, the order of
``BlockParams.weight_words``), groups gated by the loaded rows (``latency`` cycles after they
arrive) and by the output credits."""

import dataclasses

import pytest
from amaranth.sim import Simulator

from bincount.gateware.block_params import block_params
from bincount.gateware.block_sequencer import BlockSequencer
from engine_cases import tiny_export


def reference_folds(p):
    """``(oy, ox, group, fold, ky, kx, cb, w_addr)`` of every fold of an image (with split
    weights the F = 8*CB folds of taps 0..7; tap 8 is counted beside them)."""
    cb_n, F = p.cin // p.bits_per_cycle, p.folds
    assert F == (8 if p.weight_split else 9) * cb_n
    out = []
    for oy in range(p.out_size):
        for ox in range(p.out_size):
            for g in range(p.out_groups):
                for f in range(F):
                    tap, cb = divmod(f, cb_n)
                    out.append((oy, ox, g, f, tap // 3, tap % 3, cb, g * F + f))
    return out


def run(p, credits, drain, rows_at=2, images=1, cycles=5000):
    """Rows arrive: 1 at cycle 0, all from ``rows_at``; a group's beat is taken ``drain``
    cycles after its last fold."""
    dut = BlockSequencer(p, credits)
    log = {"folds": [], "starts": [], "flight": [], "done": []}

    total = images * len(reference_folds(p))

    async def tb(ctx):
        returns = []
        in_flight = 0
        stop = None
        for t in range(cycles):
            ctx.set(dut.loaded, 1 if t < rows_at or stop else p.size)
            take = bool(returns) and returns[0] <= t
            if take:
                returns.pop(0)
                in_flight -= 1
            ctx.set(dut.out_taken, take)
            _, _, issue, first, last, fold, done = await ctx.tick().sample(
                dut.issue, dut.first, dut.last, dut.fold, dut.image_done)
            if done:
                log["done"].append(t)
            if issue:
                log["folds"].append(tuple(int(getattr(fold, n)) for n in (
                    "oy", "ox", "group", "fold", "ky", "kx", "cb", "w_addr")))
                if first:
                    log["starts"].append(t)
                    in_flight += 1
                if last:
                    returns.append(t + drain)
            log["flight"].append(in_flight)
            if len(log["folds"]) >= total:
                stop = stop or t + 2            # the image_done pulse follows the last fold
            if stop and t >= stop:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return dut, log


@pytest.mark.parametrize("cin, cout, stride, size, lanes, bpc, split, images", [
    (8, 8, 1, 3, 4, 8, False, 2), (8, 16, 2, 4, 8, 8, False, 1),
    (16, 16, 1, 3, 8, 8, True, 1)])
def test_fold_order_and_gating(cin, cout, stride, size, lanes, bpc, split, images):
    ex = tiny_export(cin, cout, stride, size, "binarized", True, "pow2", 1)
    p = dataclasses.replace(block_params(ex, "stage1.conv1", lanes, bpc), split_weights=split)
    dut, log = run(p, credits=3, drain=30, images=images)
    assert log["folds"] == reference_folds(p) * images
    assert log["starts"][0] == 2 + dut.latency           # rows there from cycle 2
    assert max(log["flight"]) <= 3
    assert len(log["done"]) == images


def test_fast_drain_issues_every_cycle_within_a_row():
    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1)
    p = block_params(ex, "stage1.conv1", 4, 8)
    dut, log = run(p, credits=5, drain=14)
    folds_per_row = p.out_size * p.out_groups * p.folds
    first_row = log["starts"][:p.out_size * p.out_groups]
    assert first_row[-1] - first_row[0] == folds_per_row - p.folds   # no gaps in a row
    assert dut.latency == 1 and dut.credits == 5
