"""XNOR-popcount: the binary dot product of one output element.

Computes (``docs/conventions.md``, "Binary values")::

    count = popcount(~(act ^ wgt))          # 0 <= count <= n;  d = 2*count - n

over ``n`` bits. Bit 1 means +1, bit 0 means -1, so an XNOR of 1 is a product of +1. Port bit
``act[i]`` / ``wgt[i]`` is element ``i`` of the tap-major, channel-minor vector
``i = (ky*k + kx)*Cin + ci``; the popcount itself does not depend on the order, but ``act`` and
``wgt`` must use the same one.

Structure: the LUT-efficient compressor tree of :mod:`bincount.gateware.popcount_tree` (the
XNOR folded into the first LUTs, three pairs per LUT6; half of the groups' carries computed
inside carry-chain LUTs; then carry-chain compressors on the bit heap, a register after every
stage; about 1.0 LUT per input bit on xc7, XNOR included, see ``docs/benchmarks.md``). The
plain structure it replaced (XNOR bits, groups of ``LEAF_BITS`` counted, a binary adder tree
registered every ``LEVELS_PER_STAGE`` levels) stays available as :func:`xnor_bits`,
:func:`leaf_popcounts` and :func:`adder_tree`, the reference of the benchmark.

Latency: :func:`popcount_latency` ``(n)`` cycles, one per stage of the tree
(``plan_popcount(n).latency``: n = 64: 6, 128: 7, 576: 9, 1152: 9, 2304: 10, 4608: 11).
Throughput: one vector per cycle, no backpressure; ``out_valid`` is ``in_valid`` delayed by the
latency. Clock domain ``sync`` (``clk`` / ``rst`` in Verilog; ``rst`` is synchronous, active
high, and clears the valid pipeline only).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import N_RANGE, check_int, delay_valid
from .popcount_tree import plan_popcount, popcount_tree

__all__ = ["XnorPopcount", "popcount_latency", "adder_tree_latency", "xnor_bits",
           "leaf_popcounts", "adder_tree", "LEAF_BITS", "LEVELS_PER_STAGE"]

#: Input bits counted by one leaf of the plain adder tree (combinationally, then registered).
LEAF_BITS = 6
#: Adder-tree levels between two pipeline registers of the plain adder tree.
LEVELS_PER_STAGE = 2


def popcount_latency(n):
    """Latency in cycles of the :class:`XnorPopcount` structure for ``n`` inputs (the number of
    stages of :func:`bincount.gateware.popcount_tree.plan_popcount`)."""
    return plan_popcount(n).latency


def adder_tree_latency(n):
    """Latency in cycles of the plain structure (:func:`leaf_popcounts` + :func:`adder_tree`)."""
    leaves = -(-n // LEAF_BITS)
    levels = ceil_log2(leaves)
    return 1 + -(-levels // LEVELS_PER_STAGE)


def xnor_bits(m, act, wgt):
    """``~(act ^ wgt)`` as a named signal (never slice the un-named wide expression)."""
    bits = Signal(len(act), name="xnor")
    m.d.comb += bits.eq(~(act ^ wgt))
    return bits


def leaf_popcounts(m, bits, leaf_bits=LEAF_BITS):
    """Count each group of ``leaf_bits`` bits of ``bits`` and register it (one stage).

    Returns the list of registered partial counts, lowest bits first.
    """
    counts = []
    for i, lo in enumerate(range(0, len(bits), leaf_bits)):
        hi = min(lo + leaf_bits, len(bits))
        width = ceil_log2(hi - lo + 1)
        comb = Signal(width, name=f"leaf{i}")
        m.d.comb += comb.eq(sum(bits[j] for j in range(lo, hi)))
        reg = Signal(width, name=f"leaf{i}_r", reset_less=True)
        m.d.sync += reg.eq(comb)
        counts.append(reg)
    return counts


def adder_tree(m, values, levels_per_stage=LEVELS_PER_STAGE):
    """Sum ``values`` with a binary adder tree, registered every ``levels_per_stage`` levels.

    Each sum is one bit wider than its wider operand, so nothing overflows. The last level is
    always registered.
    Returns ``(total, stages)``: the registered sum and the number of register stages added
    (0 when ``values`` has a single element).
    """
    stages = 0
    level = 0
    while len(values) > 1:
        level += 1
        pairs = []
        for i in range(0, len(values) - 1, 2):
            a, b = values[i], values[i + 1]
            s = Signal(max(len(a), len(b)) + 1, name=f"sum_l{level}_{i // 2}")
            m.d.comb += s.eq(a + b)
            pairs.append(s)
        if len(values) % 2:
            pairs.append(values[-1])
        values = pairs
        if level % levels_per_stage == 0 or len(values) == 1:
            stages += 1
            registered = []
            for i, v in enumerate(values):
                r = Signal(len(v), name=f"sum_s{stages}_{i}", reset_less=True)
                m.d.sync += r.eq(v)
                registered.append(r)
            values = registered
    return values[0], stages


class XnorPopcount(wiring.Component):
    """``count = popcount(~(act ^ wgt))`` over ``n`` bits, fully pipelined.

    Parameters
    ----------
    n : int
        Number of XNOR inputs N (``1..65536``).

    Members
    -------
    act : ``In(n)``
        Activation bits (1 = +1, 0 = -1); bit ``i`` is element ``i`` of the vector.
    wgt : ``In(n)``
        Weight bits ``sign(W)`` in the same order.
    in_valid : ``In(1)``
        ``act`` / ``wgt`` are valid in this cycle.
    count : ``Out(ceil_log2(n + 1))``
        Popcount, unsigned, ``0..n``, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``count`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        ``n`` is not an integer in ``1..65536``.
    """

    def __init__(self, n):
        self._n = check_int("n", n, N_RANGE)
        count_bits = ceil_log2(n + 1)
        super().__init__({
            "act": In(n),
            "wgt": In(n),
            "in_valid": In(1),
            "count": Out(count_bits),
            "out_valid": Out(1),
        })
        lat = self.latency
        self.port_doc = {
            "act": f"activation bits, {n} bits, 1 = +1 and 0 = -1; bit i is element i of the "
                   f"tap-major, channel-minor vector i = (ky*k + kx)*Cin + ci",
            "wgt": f"weight bits sign(W), {n} bits, 1 = +1 and 0 = -1, same order as act",
            "in_valid": "act/wgt are valid this cycle (one vector per cycle, no backpressure)",
            "count": f"popcount(~(act ^ wgt)), unsigned, 0..{n} ({count_bits} bits), "
                     f"{lat} cycle(s) after the inputs",
            "out_valid": f"count is valid: in_valid delayed by {lat} cycle(s)",
        }

    @property
    def n(self):
        return self._n

    @property
    def latency(self):
        """Cycles from ``act`` / ``wgt`` to ``count``: :func:`popcount_latency` ``(n)``."""
        return popcount_latency(self._n)

    def elaborate(self, platform):
        m = Module()
        total, stages = popcount_tree(m, self.act, self.wgt)
        assert stages == self.latency, (stages, self.latency)
        valid = delay_valid(m, self.in_valid, stages)
        m.d.comb += [self.count.eq(total), self.out_valid.eq(valid)]
        return m
