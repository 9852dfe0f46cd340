"""Weight store in the Amaranth simulator: the load image through ``load`` with gaps, then every
block's words replayed in a loop on ``w{j}`` under random stalls, nothing before ``loaded``."""

import random

import pytest
from amaranth.sim import Simulator

from bincount.gateware.weight_store import WeightStore, chunks_per_word, load_image


@pytest.mark.parametrize("depths,width", [([5, 3], 48), ([7], 16), ([4, 6, 2], 64)])
def test_load_then_replay(depths, width):
    rng = random.Random(width)
    blocks = [[rng.getrandbits(width) for _ in range(d)] for d in depths]
    image = load_image(blocks, width)
    assert len(image) == chunks_per_word(width) * sum(depths)
    dut = WeightStore(depths, width)
    assert dut.load_words == len(image)
    loops = 3
    got = [[] for _ in depths]

    async def tb(ctx):
        k, t = 0, 0
        while k < len(image):
            send = rng.random() >= 0.3
            ctx.set(dut.load.valid, send)
            ctx.set(dut.load.payload, image[k] if send else 0)
            for j in range(len(depths)):
                ctx.set(getattr(dut, f"w{j}").ready, 1)
                assert not ctx.get(getattr(dut, f"w{j}").valid), "a word before loading"
            assert not ctx.get(dut.loaded)
            if send and ctx.get(dut.load.ready):
                k += 1
            await ctx.tick()
            t += 1
        ctx.set(dut.load.valid, 0)
        while any(len(g) < loops * d for g, d in zip(got, depths)):
            readys = [rng.random() >= 0.4 for _ in depths]
            for j, r in enumerate(readys):
                ctx.set(getattr(dut, f"w{j}").ready, r)
            vals = [(ctx.get(getattr(dut, f"w{j}").valid), ctx.get(getattr(dut, f"w{j}").payload))
                    for j in range(len(depths))]
            assert ctx.get(dut.loaded) and not ctx.get(dut.load.ready)
            await ctx.tick()
            t += 1
            for j, (v, p) in enumerate(vals):
                if v and readys[j]:
                    got[j].append(p)
            assert t < 10000

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    for j, d in enumerate(depths):
        assert got[j][:loops * d] == blocks[j] * loops, f"block {j}"


def test_full_rate_replay():
    """With ``ready`` high the store gives one word per cycle, starting 1 cycle after loading."""
    depths, width = [3], 32
    words = [11, 22, 33]
    dut = WeightStore(depths, width)
    seen = []

    async def tb(ctx):
        ctx.set(dut.w0.ready, 1)
        for w in words:
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload, w)
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        for _ in range(8):
            seen.append(ctx.get(dut.w0.payload) if ctx.get(dut.w0.valid) else None)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [None, 11, 22, 33, 11, 22, 33, 11]
