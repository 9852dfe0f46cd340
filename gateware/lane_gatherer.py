"""Lane gatherer: the ``S = P/Q`` slices of ``Q`` lanes of a channel group put back together
into one beat of ``P`` lanes (the inverse of :class:`~bincount.gateware.lane_serializer.
LaneSerializer`)::

    slices s = 0 .. S-1 arrive in order (``slice`` = s) -> out = Cat(slice 0, ..., slice S-1),
                                                            out_valid with slice S-1

Slices 0 .. S-2 wait in registers; the last one passes straight through, so ``out`` and
``out_valid`` follow the last slice in the same cycle (:attr:`LaneGatherer.latency` = 0).
Bit order: lane ``q`` of ``data`` at bits ``[q*width, (q+1)*width)``, lane ``s*Q + q`` of
``out``. Clock domain ``sync``.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_int, check_slices

__all__ = ["LaneGatherer"]


class LaneGatherer(wiring.Component):
    """``lanes / slice_lanes`` slices of ``slice_lanes`` values of ``width`` bits gathered into
    one beat of ``lanes`` values (module docstring).

    Members
    -------
    data : ``In(slice_lanes * width)``; slice : ``In(range(S))``; in_valid : ``In(1)``
    out : ``Out(lanes * width)``; out_valid : ``Out(1)``
    """

    def __init__(self, lanes, slice_lanes, width):
        check_slices(lanes, slice_lanes)
        self._lanes, self._q = lanes, slice_lanes
        self._width = check_int("width", width, (1, 64))
        s = lanes // slice_lanes
        super().__init__({"data": In(slice_lanes * width), "slice": In(ceil_log2(max(s, 2))),
                          "in_valid": In(1), "out": Out(lanes * width), "out_valid": Out(1)})

    @property
    def slices(self):
        return self._lanes // self._q

    @property
    def latency(self):
        """Cycles from the last slice to ``out``: 0."""
        return 0

    def elaborate(self, platform):
        m = Module()
        S, w = self.slices, self._q * self._width
        held = []
        for s in range(S - 1):
            reg = Signal(w, name=f"slice{s}", reset_less=True)
            with m.If(self.in_valid & (self.slice == s)):
                m.d.sync += reg.eq(self.data)
            held.append(reg)
        m.d.comb += [self.out.eq(Cat(*held, self.data)),
                     self.out_valid.eq(self.in_valid & (self.slice == S - 1))]
        return m
