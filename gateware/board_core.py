"""Board core: the whole network behind a UART that speaks the board protocol
(``docs/protocol.md``). Board-independent: a board top adds only the clock, the reset and the
pins.

::

    uart_rx -> UartRx -> FIFO (2048 B) -> register -> FrameReceiver -> image bytes -> NetworkTop
                                                              | tickets (FIFO, 16)           | results
                                                              +------> ReplyTransmitter <---+
                                                                               | bytes
                                                                       UartTx -> uart_tx

Ports: ``uart_rx`` (in, idles high), ``uart_tx`` (out, idles high), ``leds`` (out, 8):

- ``leds[0:4]``: the class of the last result sent, in binary (class index mod 16);
- ``leds[4]``: toggles with every result sent;
- ``leds[5]``: the last reply was an error;
- ``leds[6]``: a frame is being received;
- ``leds[7]``: at least one image is in the network.

Clock domain ``sync`` (the board's clock; ``rst`` resets everything, the network included).

``divisor`` is the number of clock cycles per UART bit (``clock / baud``, rounded:
:func:`divisor_for`). The network must take an image faster than the UART brings one:
``10 * divisor * (image_bytes + 8) >= network cycles per image``, checked here; the
receive FIFO (:data:`RX_FIFO_DEPTH` bytes) absorbs the network's input stalls within and
between images; a byte lost all the same makes the frame's answer ``overrun``. ``timeout_bytes``: byte times without a byte that end a frame
(:class:`FrameReceiver`).
"""

import math

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from bincount import protocol as P
from bincount.errors import BincountError

from ._common import check_int
from .frame_receiver import RX_LAYOUT, FrameReceiver
from .network_top import NetworkTop
from .reply_transmitter import ReplyTransmitter
from .stream_register import StreamRegister
from .uart_rx import DIVISOR_RANGE, UartRx
from .uart_tx import UartTx

__all__ = ["BoardCore", "divisor_for", "DEFAULT_DIVISOR", "RX_FIFO_DEPTH",
           "TICKET_DEPTH", "MAX_BAUD_ERROR"]

#: 115,200 baud from a 25 MHz clock.
DEFAULT_DIVISOR = 217
#: Received bytes buffered in front of the frame receiver: two thirds of an image (one 18-kbit
#: block RAM of 2048 x 9 bits), so a network that keeps pace with the line only on average
#: (input stalls, a few per cent of overhead over its ideal cycles) loses nothing.
RX_FIFO_DEPTH = 2048
#: Replies waiting to be sent.
TICKET_DEPTH = 16
#: Largest accepted mismatch between ``clock / divisor`` and the baud rate.
MAX_BAUD_ERROR = 0.02


def divisor_for(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``, rounded; :class:`BincountError` when
    the rate is off by more than :data:`MAX_BAUD_ERROR` or the divisor is out of range."""
    d = round(clock_hz / baud)
    lo, hi = DIVISOR_RANGE
    if not lo <= d <= hi:
        raise BincountError(f"{baud} baud at {clock_hz / 1e6:g} MHz needs {d} cycles per bit; "
                            f"the UART takes {lo}..{hi}")
    err = abs(clock_hz / d - baud) / baud
    if err > MAX_BAUD_ERROR:
        raise BincountError(f"{baud} baud at {clock_hz / 1e6:g} MHz: divisor {d} gives "
                            f"{clock_hz / d:.0f} baud, {100 * err:.1f}% off; at most "
                            f"{100 * MAX_BAUD_ERROR:g}% works")
    return d


class BoardCore(wiring.Component):
    """The network of ``export`` behind the board protocol on a UART (module docstring).

    Parameters
    ----------
    export : dict
        A ``bincount-network`` export.
    lanes, bits_per_cycle, stem_lanes :
        The network's knobs, as :class:`~bincount.gateware.network_top.NetworkTop`.
    divisor : int
        Clock cycles per UART bit, 4..65535.
    timeout_bytes : int
        Byte times of silence that end a frame (keyword only).

    Attributes
    ----------
    network : NetworkTop
    info : bytes
        The INFO reply's payload this board sends.
    """

    def __init__(self, export, lanes=None, bits_per_cycle=None, stem_lanes=None,
                 divisor=DEFAULT_DIVISOR, *, timeout_bytes=16384):
        from bincount.hw.network_emit import export_digest
        from bincount.model.export.network_file import export_meta

        self.network = None
        self.divisor = check_int("UART divisor", divisor, DIVISOR_RANGE)
        self.timeout_bytes = check_int("timeout bytes", timeout_bytes, (1, 1 << 24))
        meta = export_meta(export)
        size, channels = int(meta["input"]["size"]), int(meta["input"]["channels"])
        self.image_bytes = size * size * channels
        self.classes = int(meta["head"]["classes"])
        fmt = meta["formats"]
        self.logit_bits, logit_frac = int(fmt["logit_bits"]), int(fmt["logit_frac"])
        if self.logit_bits > 8 * P.LOGIT_BYTES or self.classes > 255:
            raise BincountError(f"the board protocol carries at most 255 classes of "
                                f"{8 * P.LOGIT_BYTES}-bit logits; the export has "
                                f"{self.classes} of {self.logit_bits} bits")
        self.network = NetworkTop(export, lanes, bits_per_cycle, stem_lanes)
        uart_cycles = 10 * self.divisor * (self.image_bytes + P.FRAME_OVERHEAD + 1)
        if uart_cycles < self.network.ideal_cycles:
            need = math.ceil(self.network.ideal_cycles
                             / (10 * (self.image_bytes + P.FRAME_OVERHEAD + 1)))
            raise BincountError(
                f"UART divisor {self.divisor} brings an image in {uart_cycles} cycles, "
                f"faster than the network takes one ({self.network.ideal_cycles} cycles); "
                f"bytes would be lost: use a divisor >= {need} (a lower baud rate)")
        self.digest = bytes.fromhex(export_digest(export))[:P.DIGEST_BYTES]
        self.info = P.info_payload(size, size, channels, self.classes, self.logit_bits,
                                   logit_frac, self.digest, self.network.ideal_cycles,
                                   self.divisor)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
                          "leds": Out(8)})

    @property
    def latency(self):
        """None: a reply follows its request after the network's and the UART's time, which
        depend on the other images in flight (``docs/protocol.md``, "Timing")."""
        return None

    @property
    def cycles_per_image(self):
        """Cycles per image of the network (its slowest part)."""
        return self.network.ideal_cycles

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.rx_fifo = rx_fifo = SyncFIFOBuffered(width=RX_LAYOUT.size,
                                                          depth=RX_FIFO_DEPTH)
        # the FIFO's block RAM output (no output register) goes straight into a register, not
        # into the receiver's frame logic
        m.submodules.rx_reg = rx_reg = StreamRegister(RX_LAYOUT.size)
        m.submodules.receiver = recv = FrameReceiver(
            self.image_bytes, self.timeout_bytes * 10 * self.divisor,
            max_in_flight=P.MAX_IN_FLIGHT, ticket_depth=TICKET_DEPTH)
        wiring.connect(m, rx_reg.o, recv.i)
        m.submodules.tickets = tickets = SyncFIFOBuffered(width=recv.ticket.payload.shape().size,
                                                          depth=TICKET_DEPTH)
        m.submodules.network = net = self.network
        m.submodules.transmitter = xmit = ReplyTransmitter(
            self.info, net.head.result_layout, self.classes, self.logit_bits, self.image_bytes,
            max_in_flight=P.MAX_IN_FLIGHT)
        m.submodules.tx = tx = UartTx(self.divisor)

        m.d.comb += [
            rx.rx.eq(self.uart_rx),
            rx_fifo.w_data.eq(rx.o.payload | (rx.framing_error << 8)),
            rx_fifo.w_en.eq(rx.o.valid),
            rx.o.ready.eq(rx_fifo.w_rdy),
            rx_reg.i.payload.eq(rx_fifo.r_data),
            rx_reg.i.valid.eq(rx_fifo.r_rdy),
            rx_fifo.r_en.eq(rx_reg.i.ready),
            recv.overrun.eq(rx.overrun),
            tickets.w_data.eq(recv.ticket.payload),
            tickets.w_en.eq(recv.ticket.valid),
            recv.ticket.ready.eq(tickets.w_rdy),
            recv.ticket_level.eq(tickets.level),
            xmit.ticket.payload.eq(tickets.r_data),
            xmit.ticket.valid.eq(tickets.r_rdy),
            tickets.r_en.eq(xmit.ticket.ready),
            recv.result_taken.eq(xmit.result_taken),
            self.uart_tx.eq(tx.tx),
            self.leds.eq(xmit.last_class[:4] | (xmit.results << 4) | (xmit.last_error << 5)
                         | (recv.in_frame << 6) | ((recv.in_flight != 0) << 7)),
        ]
        wiring.connect(m, recv.image, net.i)
        wiring.connect(m, net.o, xmit.result)
        wiring.connect(m, xmit.o, tx.i)
        return m
