"""Lane array: the ``P`` XNOR-popcount lanes of a binary block, each accumulating its count
over the ``F`` folds of an output element.

For lane ``p`` and a group of folds ``f = 0 .. F-1`` (``first`` marks fold 0, ``last`` fold
``F-1``)::

    counts[p] = sum_f popcount(~(act_f ^ wgt_f[p*B : (p+1)*B]))        0 .. B*F

``act`` is the fold's ``B`` window bits (shared by all lanes), ``wgt`` the fold's weight word
(lane ``p`` at bits ``[p*B, (p+1)*B)``, the bit order of
:meth:`~bincount.gateware.block_params.BlockParams.weight_words`). Each lane is an
:class:`~bincount.gateware.xnor_popcount.XnorPopcount` of ``B`` bits and an accumulator that
restarts at ``first``.

Latency: ``popcount_latency(B) + 1`` cycles from the ``last`` fold's inputs to ``counts`` and
``out_valid`` (the tree, then the accumulator register); ``out_valid`` is high for one cycle per
group; ``counts`` are the group's in that cycle and change when the next group's first fold
reaches the accumulator (as soon as the next cycle). One fold per cycle, no
backpressure. Clock domain ``sync``; ``rst`` clears the valid pipeline only.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_int, delay, delay_valid
from .xnor_popcount import XnorPopcount, popcount_latency

__all__ = ["LaneArray"]


class LaneArray(wiring.Component):
    """``lanes`` XNOR-popcounts of ``bits`` bits accumulated over ``folds`` folds.

    Members
    -------
    act : ``In(bits)``; wgt : ``In(lanes * bits)``
        The fold's window bits and weight word.
    in_valid, first, last : ``In(1)``
        A fold is present; it is the group's first / last fold.
    counts : ``Out(ArrayLayout(unsigned(ceil_log2(bits*folds + 1)), lanes))``
        Lane ``p``'s count of the group, ``latency`` cycles after its last fold.
    out_valid : ``Out(1)``
        ``counts`` are new this cycle.
    """

    def __init__(self, lanes, bits, folds):
        self._lanes = check_int("lanes", lanes, (1, 1024))
        self._bits = check_int("bits", bits, (1, 65536))
        self._folds = check_int("folds", folds, (1, 65536))
        count = unsigned(ceil_log2(bits * folds + 1))
        super().__init__({"act": In(bits), "wgt": In(lanes * bits), "in_valid": In(1),
                          "first": In(1), "last": In(1),
                          "counts": Out(data.ArrayLayout(count, lanes)), "out_valid": Out(1)})

    @property
    def latency(self):
        """Cycles from the last fold to ``counts``: ``popcount_latency(bits) + 1``."""
        return popcount_latency(self._bits) + 1

    def elaborate(self, platform):
        m = Module()
        B, lp = self._bits, popcount_latency(self._bits)
        k_first = delay(m, self.first, lp, "k_first")
        k_last = delay(m, self.last, lp, "k_last")
        k_valid = delay_valid(m, self.in_valid, lp)
        for lane in range(self._lanes):
            pc = XnorPopcount(B)
            m.submodules[f"popcount{lane}"] = pc
            m.d.comb += [pc.act.eq(self.act), pc.wgt.eq(self.wgt[lane * B:(lane + 1) * B]),
                         pc.in_valid.eq(self.in_valid)]
            acc = Signal(len(self.counts[lane]), name=f"count{lane}", reset_less=True)
            with m.If(k_valid):
                m.d.sync += acc.eq(Mux(k_first, 0, acc) + pc.count)
            m.d.comb += self.counts[lane].eq(acc)
        valid = Signal(name="count_valid")
        m.d.sync += valid.eq(k_valid & k_last)
        m.d.comb += self.out_valid.eq(valid)
        return m
