"""Lane serializer: the ``P`` lane values of one channel group handed on ``Q`` lanes at a time,
so that one set of ``Q`` post-popcount units serves all ``P`` lanes.

A lane array delivers the counts of a channel group once every ``F`` cycles at most (one
fold per cycle). The serializer captures them and, with ``S = P/Q <= F``, hands out the ``S``
slices one per cycle before the next group's counts come::

    in_valid at cycle t (counts of group g)  ->  slice s = data[s*Q : (s+1)*Q] at cycle t+2+s,
                                                 index = g*S + s, last = (s == S-1)

``index`` is the slice's channel group of ``Q`` lanes (channel ``c = index*Q + q`` for lane
``q`` of the slice), the address of a constant ROM packed for ``Q`` lanes. Latency:
:attr:`LaneSerializer.latency` = 2 cycles from ``in_valid`` to slice 0 (the capture register,
the slice register); slice ``s`` follows ``s`` cycles later. ``in_valid`` must not come again
within ``S`` cycles (the block has ``S < F``: its shortcut needs a cycle between two
groups' slices). Bit order: lane ``p`` of ``data`` at bits
``[p*width, (p+1)*width)``, lane ``q`` of ``out`` likewise. Clock domain ``sync``; ``rst``
ends a slice sequence.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_int, check_slices

__all__ = ["LaneSerializer"]


class LaneSerializer(wiring.Component):
    """``lanes`` values of ``width`` bits handed on ``slice_lanes`` lanes per cycle (module
    docstring); ``groups``: channel groups of ``lanes`` (the range of ``group``).

    Members
    -------
    data : ``In(lanes * width)``; group : ``In(range(groups))``; in_valid : ``In(1)``
    out : ``Out(slice_lanes * width)``; index : ``Out(range(groups * S))``;
    slice : ``Out(range(S))``; last : ``Out(1)``; out_valid : ``Out(1)``
    """

    def __init__(self, lanes, slice_lanes, width, groups):
        check_slices(lanes, slice_lanes)
        self._lanes, self._q = lanes, slice_lanes
        self._width = check_int("width", width, (1, 64))
        self._groups = check_int("groups", groups, (1, 1 << 20))
        s = self.slices
        super().__init__({
            "data": In(lanes * width), "group": In(ceil_log2(max(groups, 2))),
            "in_valid": In(1),
            "out": Out(slice_lanes * width), "index": Out(ceil_log2(max(groups * s, 2))),
            "slice": Out(ceil_log2(max(s, 2))), "last": Out(1), "out_valid": Out(1),
        })

    @property
    def slices(self):
        """``S = lanes / slice_lanes``: cycles one group takes."""
        return self._lanes // self._q

    @property
    def latency(self):
        """Cycles from ``in_valid`` to slice 0: 2."""
        return 2

    def elaborate(self, platform):
        m = Module()
        S, w = self.slices, self._q * self._width
        cap = Signal(len(self.data), name="captured", reset_less=True)
        g = Signal.like(self.group, name="group_r", reset_less=True)
        count = Signal(range(S), name="count")          # the slice handed out next
        busy = Signal(name="busy")
        with m.If(self.in_valid):
            m.d.sync += [cap.eq(self.data), g.eq(self.group), count.eq(0), busy.eq(1)]
        with m.Elif(busy):
            m.d.sync += [count.eq(Mux(count == S - 1, 0, count + 1)), busy.eq(count != S - 1)]
        out = Signal(w, name="out_r", reset_less=True)
        index = Signal.like(self.index, name="index_r", reset_less=True)
        sl = Signal.like(self.slice, name="slice_r", reset_less=True)
        valid = Signal(name="valid_r")
        m.d.sync += [out.eq(cap.word_select(count, w)), index.eq(g * S + count),
                     sl.eq(count), valid.eq(busy)]
        m.d.comb += [self.out.eq(out), self.index.eq(index), self.slice.eq(sl),
                     self.last.eq(sl == S - 1), self.out_valid.eq(valid)]
        return m
