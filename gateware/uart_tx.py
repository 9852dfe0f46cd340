"""UART transmitter: 8N1, least significant bit first, ``divisor`` clock cycles per bit.

Each byte taken from ``i`` goes out on ``tx`` as a start bit (low), the 8 data bits (bit 0
first) and a stop bit (high), every bit exactly ``divisor`` cycles long. ``tx`` is a register
(no glitches on the pin) that idles high and is high after reset.

``i.ready`` is high while the line is idle and in the last cycle of a stop bit, so a byte that
is waiting leaves right behind the previous one: back-to-back bytes take exactly
``10 * divisor`` cycles each.

Limits: ``divisor`` in ``4..65535`` (as :class:`~bincount.gateware.uart_rx.UartRx`).

Latency (:attr:`UartTx.latency`): 1 cycle from the cycle a byte is accepted on ``i`` to the
first cycle of its start bit on ``tx``. Clock domain ``sync``; ``rst`` ends a byte in progress
(the line goes high).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int
from .uart_rx import DIVISOR_RANGE

__all__ = ["UartTx"]


class UartTx(wiring.Component):
    """UART transmitter at ``divisor`` clock cycles per bit (module docstring)."""

    def __init__(self, divisor):
        self.divisor = check_int("UART divisor", divisor, DIVISOR_RANGE)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    @property
    def latency(self):
        """Cycles from a byte's acceptance on ``i`` to its start bit on ``tx``."""
        return 1

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        count = Signal(range(d), name="count")
        left = Signal(range(10), name="left")         # bits still to put on the line
        busy = Signal(name="busy")
        shift = Signal(9, name="shift", reset_less=True)   # data bits, then the stop bit

        last = busy & (count == 0) & (left == 0)      # last cycle of the stop bit
        m.d.comb += self.i.ready.eq(~busy | last)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.tx.eq(0), shift.eq(Cat(self.i.payload, 1)), left.eq(9),
                         count.eq(d - 1), busy.eq(1)]
        with m.Elif(busy):
            with m.If(count != 0):
                m.d.sync += count.eq(count - 1)
            with m.Elif(left != 0):
                m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1), left.eq(left - 1),
                             count.eq(d - 1)]
            with m.Else():
                m.d.sync += busy.eq(0)
        return m
