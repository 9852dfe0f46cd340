"""UART receiver: 8N1, least significant bit first, ``divisor`` clock cycles per bit.

::

    rx pin -> 2-flop synchronizer -> start-bit detector -> mid-bit sampler -> o (bytes)

The line idles high. A low level on the synchronized line starts a byte; the start bit is
sampled again ``divisor // 2`` cycles later (still low: a byte; high again: a glitch, ignored),
then every ``divisor`` cycles the 8 data bits (bit 0 first) and the stop bit, each near the
middle of its bit time. The synchronizer delays the detection and the samples alike, so they
stay centred.

Streams: ``o`` one byte per beat; ``o.valid`` stays high until ``o.ready``. ``framing_error``
is valid with the beat: the stop bit was sampled low (a break or a wrong baud rate); the byte
is delivered anyway. After a framing error the receiver waits for the line to be high before it
looks for the next start bit (a held-low line gives one byte, not a stream of them); so does it
after reset. ``overrun`` pulses for one cycle when a byte is complete while the previous one
still waits on ``o``: the new byte is dropped.

Limits: ``divisor`` in ``4..65535``. Sampling at ``divisor // 2`` of each bit tolerates a
clock/baud mismatch of about ``(divisor // 2 - 1) / (9.5 * divisor)`` over the 10 bits of a
byte (about 2.6% at divisor 4, 4.7% at large divisors), besides the one-cycle sampling jitter.

Latency (:attr:`UartRx.latency`): ``divisor // 2 + 9 * divisor + 3`` cycles from the first
rising clock edge that sees the start bit low on the pin to the first cycle ``o.valid`` is high
(2 synchronizer cycles, half a bit to the start bit's middle, 9 bits to the stop bit's middle,
1 output register). Clock domain ``sync``; ``rst`` drops a byte in progress.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["UartRx", "DIVISOR_RANGE"]

#: Valid clock cycles per bit (inclusive).
DIVISOR_RANGE = (4, 65535)


class UartRx(wiring.Component):
    """UART receiver at ``divisor`` clock cycles per bit (module docstring)."""

    def __init__(self, divisor):
        self.divisor = check_int("UART divisor", divisor, DIVISOR_RANGE)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "framing_error": Out(1), "overrun": Out(1)})

    @property
    def latency(self):
        """Cycles from the clock edge that first sees the start bit low on ``rx`` to
        ``o.valid``."""
        return self.divisor // 2 + 9 * self.divisor + 3

    def elaborate(self, platform):
        m = Module()
        d, half = self.divisor, self.divisor // 2
        line = Signal(init=1, name="rx_sync")
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1, stages=2)
        count = Signal(range(d), name="count")
        bits = Signal(range(8), name="bits")
        shift = Signal(8, name="shift", reset_less=True)

        m.d.comb += self.overrun.eq(0)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM(init="WAIT_HIGH"):
            with m.State("WAIT_HIGH"):
                with m.If(line):
                    m.next = "IDLE"
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += count.eq(half - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(line):
                    m.next = "IDLE"                       # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [count.eq(d - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    m.d.sync += [shift.eq((shift >> 1) | (line << 7)), count.eq(d - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift),
                                     self.framing_error.eq(~line)]
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "WAIT_HIGH"
        return m
