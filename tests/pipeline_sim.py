"""Amaranth-simulator helpers shared by the component tests (pipelined blocks with
``in_valid`` / ``out_valid``, no backpressure)."""

from amaranth.hdl import ClockDomain, Fragment, Module
from amaranth.sim import Simulator

__all__ = ["rtl_pipeline", "expected_pipeline", "assert_pipeline", "elaborated",
           "assert_reset_clears_valid"]


def rtl_pipeline(dut, vectors, outputs=("y",)):
    """Drive one input dict per cycle (``None`` = bubble, ``in_valid`` low) and return
    ``[(cycle, {output: value})]`` for every cycle whose ``out_valid`` is high, sampled after
    that cycle's clock edge. Runs ``latency + 2`` idle cycles at the end."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def tb(ctx):
        for t in range(len(vectors) + dut.latency + 2):
            vec = vectors[t] if t < len(vectors) else None
            ctx.set(dut.in_valid, vec is not None)
            for port, value in (vec or {}).items():
                ctx.set(getattr(dut, port), value)
            await ctx.tick()
            if ctx.get(dut.out_valid):
                got.append((t, {o: ctx.get(getattr(dut, o)) for o in outputs}))

    sim.add_testbench(tb)
    sim.run()
    return got


def expected_pipeline(vectors, latency, ref):
    """What :func:`rtl_pipeline` must return: input ``t`` appears after edge ``t + latency - 1``."""
    return [(t + latency - 1, ref(v)) for t, v in enumerate(vectors) if v is not None]


def assert_pipeline(dut, vectors, ref, outputs=("y",)):
    """Run ``dut`` and compare with ``ref(vector) -> {output: value}``; a failure names the
    vector index, the expected and the actual value."""
    got = rtl_pipeline(dut, vectors, outputs)
    exp = expected_pipeline(vectors, dut.latency, ref)
    index = [t for t, v in enumerate(vectors) if v is not None]
    for i, (g, e) in enumerate(zip(got, exp)):
        assert g == e, (f"vector {index[i]} ({vectors[index[i]]}): expected (cycle, value) "
                        f"{e}, got {g}")
    assert len(got) == len(exp), f"expected {len(exp)} valid outputs, got {len(got)}"


def elaborated(dut):
    """``dut`` after elaboration, so Amaranth does not warn that it was never used."""
    Fragment.get(dut, None)
    return dut


def assert_reset_clears_valid(dut):
    """``in_valid`` high for three cycles, then a one-cycle synchronous reset (``in_valid``
    still high during it): ``out_valid`` must stay low for the ``latency + 2`` cycles after."""
    top = Module()
    top.domains.sync = sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    seen = []

    async def tb(ctx):
        ctx.set(dut.in_valid, 1)
        for _ in range(3):
            await ctx.tick()
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        ctx.set(dut.in_valid, 0)
        for _ in range(dut.latency + 2):
            await ctx.tick()
            seen.append(ctx.get(dut.out_valid))

    sim.add_testbench(tb)
    sim.run()
    assert seen == [0] * (dut.latency + 2), f"out_valid after reset: {seen}"
