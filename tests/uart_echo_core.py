"""A stand-in board core for the board flow tests: the ports of the real core
(``uart_rx: In(1)``, ``uart_tx: Out(1)``, ``leds: Out(8)``, domain ``sync``) around almost no
logic, so that Yosys, nextpnr and ecppack finish in seconds.

``uart_tx`` is ``uart_rx`` one cycle later (an echo of the line, bit for bit; idle 1 after reset)
and ``leds`` counts the falling edges of ``uart_rx`` (start bits and zero bits), modulo 256.
With ``slow=True`` the LEDs show instead the top byte of the square of a 36-bit count, one
multiplier-and-adder path between two registers: a design that cannot run at the ECP5 PLL's
400 MHz, for the timing-failure test.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartEchoCore"]


class UartEchoCore(wiring.Component):
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(8)

    def __init__(self, slow=False):
        self.slow = slow
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        last = Signal(init=1)
        m.d.sync += [self.uart_tx.eq(self.uart_rx), last.eq(self.uart_rx)]
        if not self.slow:
            with m.If(last & ~self.uart_rx):
                m.d.sync += self.leds.eq(self.leds + 1)
            return m
        count = Signal(36)
        square = Signal(72)
        with m.If(last & ~self.uart_rx):
            m.d.sync += count.eq(count + 1)
        m.d.sync += [square.eq(count * count), self.leds.eq(square[-8:])]
        return m
