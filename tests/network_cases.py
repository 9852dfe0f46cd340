"""Small calibrated networks for the whole-network engine tests (stem, head, top): one
``(export, gold)`` per form at width 0.0625 (stem C0 = 4, stages 4 / 8 / 16 / 32 channels),
made once per test process by :func:`bincount.model.export.network_golden.network_golden` (two real
CIFAR-10 test images from the bundled sample)."""

import functools

import numpy as np
from amaranth.sim import Simulator

from bincount.model.export.network_golden import network_golden

__all__ = ["small_network", "WIDTH", "drive_stream"]

WIDTH = 0.0625


@functools.lru_cache(maxsize=None)
def small_network(form="binarized", width=WIDTH, seed=1):
    return network_golden(form, width, seed=seed, test_images=2)


def drive_stream(dut, beats, expected_count, seed=0, gap=0.3, stall=0.3, max_cycles=400000,
                 watch=None):
    """Drive ``beats`` into ``dut.i`` (gap probability ``gap``), take ``dut.o`` (ready low with
    probability ``stall``) until ``expected_count`` beats came. ``watch``: ``{name: (valid,
    value, ...)}`` signals sampled every cycle; a cycle ``t`` where the first is high appends
    ``(t, values of the others...)`` to ``seen[name]``. Returns ``(out, seen, log)``: ``log`` has the cycles of
    every input and output beat."""
    rng = np.random.default_rng(seed)
    got, seen = [], {k: [] for k in (watch or {})}
    log = {"in": [], "out": []}

    async def tb(ctx):
        k = 0
        for t in range(max_cycles):
            send = k < len(beats) and rng.random() >= gap
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, beats[k])
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            for name, sigs in (watch or {}).items():
                vals = [ctx.get(s) for s in sigs]
                if vals[0]:
                    seen[name].append((t, *vals[1:]))
            i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            o_payload = ctx.get(dut.o.payload)
            await ctx.tick()
            if send and i_ready:
                k += 1
                log["in"].append(t)
            if ready and o_valid:
                got.append(o_payload)
                log["out"].append(t)
                if len(got) == expected_count:
                    return
        raise AssertionError(f"only {len(got)} of {expected_count} output beats after "
                             f"{max_cycles} cycles ({k} of {len(beats)} input beats taken)")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got, seen, log
