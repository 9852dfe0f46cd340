"""ULX3S board top: the 25 MHz oscillator through the PLL, reset, the USB-serial UART and the
LEDs around one core.

::

    clk25 (G2, 25 MHz) -> Ecp5Pll -> domain "sync" at the planned clock
    reset of "sync" = ~pll_locked | button F1, asserted at once, released two "sync" edges later
    uart.rx (M1, FTDI TXD)  -> 2-flop synchronizer (idle 1) -> core.uart_rx
    core.uart_tx            -> uart.tx (L4, FTDI RXD)
    core.leds[0..7]         -> led 0..7 (B2 C2 C1 D2 D1 E2 E1 H3, high = lit)

The pins are those of ``amaranth_boards.ulx3s`` (its ``uart`` resource names the lines from the
FPGA's side: ``rx`` is the FPGA's input, the FT231X's TXD; ``tx`` its output, the FT231X's RXD;
the board's own constraint file calls them ``ftdi_txd`` and ``ftdi_rxd``, from the FT231X's side).
``core`` is any component with ports ``uart_rx: In(1)``, ``uart_tx: Out(1)``, ``leds: Out(8)``
in domain ``sync``; the top adds 2 cycles of latency on ``uart_rx`` (the synchronizer) and none
on ``uart_tx`` or ``leds``. The pin constraints give the oscillator's 25 MHz; nextpnr derives
the constraint of the PLL output from it and the PLL's dividers, so the place and route times
the core at the clock it runs at.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

from .ecp5_pll import Ecp5Pll

__all__ = ["Ulx3sTop", "OSCILLATOR_MHZ", "RESET_BUTTON"]

#: The ULX3S's oscillator (resource ``clk25``).
OSCILLATOR_MHZ = 25
#: The button that resets the core: ``button_fire`` 0 (F1, pin R1, high while pressed).
RESET_BUTTON = ("button_fire", 0)


class Ulx3sTop(Elaboratable):
    """``core`` (module docstring) on the ULX3S, its ``sync`` domain clocked by the PLL with
    :class:`~bincount.gateware.ecp5_pll.PllParams` ``pll``."""

    def __init__(self, core, pll):
        self.core = core
        self.pll = pll
        self.latency_uart_rx = 2

    def elaborate(self, platform):
        m = Module()
        clk25 = platform.request("clk25", 0, dir="-")
        m.submodules.clk25_buf = clk25_buf = io.Buffer("i", clk25)
        m.submodules.pll = pll = Ecp5Pll(self.pll)
        clk = Signal(name="clk_core")
        m.d.comb += [pll.clk_in.eq(clk25_buf.i), clk.eq(pll.clk_out)]
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)

        button = platform.request(*RESET_BUTTON, dir="-")
        m.submodules.button_buf = button_buf = io.Buffer("i", button)
        m.submodules.reset_sync = ResetSynchronizer(~pll.locked | button_buf.i, domain="sync")

        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-", "rts": "-", "dtr": "-"})
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.core = core = self.core
        m.submodules.uart_rx_sync = FFSynchronizer(rx_buf.i, core.uart_rx, init=1)
        m.d.comb += tx_buf.o.eq(core.uart_tx)

        for k in range(8):
            led = platform.request("led", k, dir="-")
            buf = io.Buffer("o", led)
            m.submodules[f"led{k}_buf"] = buf
            m.d.comb += buf.o.eq(core.leds[k])
        return m
