"""The compressor tree of ``bincount.gateware.popcount_tree`` against a pure popcount.

The hardware runs in the Amaranth simulator behind a bare harness (no valid logic): one vector
enters per clock cycle and its count must appear exactly ``latency`` cycles later, so that
every stage's registers are checked for alignment, not only the final sum.
"""

import itertools
import random

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from bincount.gateware.popcount_tree import plan_popcount, popcount_tree


def ref_count(act, wgt, n):
    """docs/conventions.md: ``count = popcount(~(act ^ wgt))`` over ``n`` bits."""
    return bin(~(act ^ wgt) & ((1 << n) - 1)).count("1")


class Harness(Elaboratable):
    def __init__(self, n):
        self.n = n
        self.act = Signal(n)
        self.wgt = Signal(n)
        self.count = Signal(plan_popcount(n).width)
        self.latency = None

    def elaborate(self, platform):
        m = Module()
        count, self.latency = popcount_tree(m, self.act, self.wgt)
        m.d.comb += self.count.eq(count)
        return m


def run_stream(n, vectors):
    """Feed ``vectors`` (``(act, wgt)``) one per cycle; return the count seen ``latency``
    cycles after each, plus the counts seen in the cycles before the first one arrives."""
    dut = Harness(n)
    latency = plan_popcount(n).latency
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    seen = []

    async def tb(ctx):
        for t in range(len(vectors) + latency):
            act, wgt = vectors[t] if t < len(vectors) else (0, 0)
            ctx.set(dut.act, act)
            ctx.set(dut.wgt, wgt)
            await ctx.tick()
            seen.append(ctx.get(dut.count))

    sim.add_testbench(tb)
    sim.run()
    assert dut.latency == latency
    # after edge t + latency - 1 the output holds the count of vector t
    return seen[latency - 1:latency - 1 + len(vectors)]


def check(n, vectors):
    got = run_stream(n, vectors)
    for i, ((act, wgt), g) in enumerate(zip(vectors, got)):
        exp = ref_count(act, wgt, n)
        assert g == exp, f"n={n} vector {i} (act={act:#x}, wgt={wgt:#x}): expected {exp}, got {g}"


def structured(n):
    full = (1 << n) - 1
    alt = int("01" * ((n + 1) // 2), 2) & full
    vecs = [(0, 0), (full, full), (0, full), (full, 0), (alt, alt), (alt, full ^ alt)]
    vecs += [(full, full ^ (1 << i)) for i in range(0, n, max(1, n // 8))]   # one disagreement
    vecs += [(0, full ^ (1 << i)) for i in range(0, n, max(1, n // 8))]      # one agreement
    return vecs


def random_vectors(n, number, rng):
    out = []
    for _ in range(number):
        act = rng.getrandbits(n)
        p = rng.choice((0.03, 0.5, 0.97))            # low, even and high agreement
        agree = sum(1 << i for i in range(n) if rng.random() < p)
        out.append((act, act ^ ~agree & ((1 << n) - 1)))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_exhaustive_tiny(n):
    vectors = [(a, w) for a, w in itertools.product(range(1 << n), repeat=2)]
    check(n, vectors)


def test_exhaustive_counts_n7():
    # every act for three weights: all 128 agreement patterns of 7 bits, each at several latencies
    n = 7
    check(n, [(a, w) for a in range(1 << n) for w in (0, 0x55, 0x7F)])


@pytest.mark.parametrize("n", list(range(5, 41)))
def test_random_small(n):
    rng = random.Random(n)
    check(n, structured(n) + random_vectors(n, 40, rng))


@pytest.mark.parametrize("n", [64, 100, 576])
def test_random_wide(n):
    rng = random.Random(n)
    check(n, structured(n) + random_vectors(n, 30, rng))


@pytest.mark.parametrize("n", list(range(1, 200)) + [576, 1152, 2304, 4608, 5000])
def test_plan_model(n):
    # the plan itself (pure Python, stage by stage) counts right, and every count fits
    plan = plan_popcount(n)
    rng = random.Random(n)
    for _ in range(8):
        x = [rng.getrandbits(1) for _ in range(n)]
        assert plan.evaluate(x) == sum(x)
    assert plan.evaluate([1] * n) == n
    assert plan.evaluate([0] * n) == 0
    assert plan.width == n.bit_length()
    assert plan.latency == len(plan.stages) >= 1


@pytest.mark.parametrize("n, latency", [(1, 1), (2, 1), (3, 2), (6, 3), (24, 5), (64, 6),
                                        (128, 7), (576, 9), (1152, 9), (2304, 10), (4608, 11)])
def test_latency(n, latency):
    assert plan_popcount(n).latency == latency


@pytest.mark.parametrize("n, per_bit", [(64, 1.05), (128, 1.05), (576, 1.0), (1152, 1.0),
                                        (2304, 1.0), (4608, 1.0)])
def test_lut_estimate(n, per_bit):
    # the planner's own count (the LUTs Yosys builds, within a few) stays at or below one LUT
    # per input bit, XNOR included, at the ReActNet-18 widths, and near it for engine lanes;
    # Yosys' figures are in docs/benchmarks.md
    assert plan_popcount(n).luts <= per_bit * n


@pytest.mark.parametrize("n", [24, 64, 576, 1152])
def test_fused_carries_used(n):
    # these widths use fused carries: stage-3 chains of two positions that compute a group's
    # carry and count a loose pair, the group's parity kept beside the heap for them
    plan = plan_popcount(n)
    fused = plan.stages[0].fused
    assert fused
    assert plan.stages[1].side == [parity for parity, _, _ in fused]
    chains = [op for op in plan.stages[2].ops
              if any(it[0] == "maj" for seg in getattr(op, "segs", ()) for it, _ in seg.inputs
                     if isinstance(it, tuple))]
    assert len(chains) == len(fused) and all(ch.length == 2 for ch in chains)


def test_every_chain_spans_two_positions():
    # Yosys maps an addition of at most two result bits to LUTs, not to the carry chain
    for n in (7, 24, 64, 100, 576):
        for st in plan_popcount(n).stages:
            for op in st.ops:
                if hasattr(op, "segs"):
                    assert op.length >= 2, (n, op)


def test_portable_rtl():
    # plain Amaranth: converts to RTLIL, no instances, no multipliers
    dut = Harness(96)
    text = rtlil.convert(dut, ports=[dut.act, dut.wgt, dut.count], emit_src=False)
    assert "$mul" not in text and "cell \\" not in text.replace("cell \\$", "")


def test_width_mismatch():
    m = Module()
    with pytest.raises(ValueError, match="differ in width"):
        popcount_tree(m, Signal(4), Signal(5))


@pytest.mark.parametrize("n", [0, -3, 2.0, True])
def test_bad_n(n):
    with pytest.raises(ValueError, match="positive integer"):
        plan_popcount(n)
