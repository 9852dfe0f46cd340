"""Saturating add: the sum of a binary block's conv output and its shortcut, for ``P`` lanes.

For each lane ``p`` (signed ``bits``-bit operands)::

    y[p] = sat(a[p] + b[p])            clamped to [-2**(bits-1), 2**(bits-1) - 1]

The ``bits + 1``-bit sum overflowed when its two top bits differ (no comparators).

Latency: 1 cycle (``y`` registered); ``out_valid`` is ``in_valid`` delayed by it. Bit order:
lane ``p`` at bits ``[p*bits, (p+1)*bits)`` of every port. Clock domain ``sync``; ``rst``
clears ``out_valid`` only.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int, delay_valid

__all__ = ["SaturatingAdd"]


class SaturatingAdd(wiring.Component):
    """``y[p] = sat(a[p] + b[p])`` for ``lanes`` signed ``bits``-bit lanes, registered.

    Members: ``a``, ``b`` (``In``), ``y`` (``Out``), all ``ArrayLayout(signed(bits), lanes)``;
    ``in_valid`` / ``out_valid``.
    """

    def __init__(self, lanes, bits=16):
        self._lanes = check_int("lanes", lanes, (1, 1024))
        self._bits = check_int("bits", bits, (2, 64))
        lanes_layout = data.ArrayLayout(signed(bits), lanes)
        super().__init__({"a": In(lanes_layout), "b": In(lanes_layout), "in_valid": In(1),
                          "y": Out(lanes_layout), "out_valid": Out(1)})

    @property
    def latency(self):
        """Cycles from ``a`` / ``b`` to ``y``: 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        bits = self._bits
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        for lane in range(self._lanes):
            total = Signal(signed(bits + 1), name=f"sum_sat{lane}_wide")
            m.d.comb += total.eq(self.a[lane] + self.b[lane])
            sat = Signal(signed(bits), name=f"sum_sat{lane}")
            m.d.comb += sat.eq(Mux(total[bits] == total[bits - 1], total[:bits],
                                   Mux(total[bits], lo, hi)))
            r = Signal(signed(bits), name=f"sum{lane}", reset_less=True)
            m.d.sync += r.eq(sat)
            m.d.comb += self.y[lane].eq(r)
        m.d.comb += self.out_valid.eq(delay_valid(m, self.in_valid, self.latency))
        return m
