"""Frame receiver of the board protocol (``docs/protocol.md``): received bytes in, image bytes
to the network and one reply ticket per frame out.

::

    i (byte, framing error) -> [hunt B1 C0] -> VERSION TYPE LEN -> check -> payload -> CHECK
                                                                       |
                                    image bytes of an accepted CLASSIFY -> image (to the network)
    one ticket per frame (INFO, RESULT, or ERROR with its code)       -> ticket (to the replies)

Hunting: bytes are skipped until ``B1 C0`` (bytes with a framing error never match). After the
header, a frame whose VERSION, TYPE or LEN is wrong gets an error ticket at once and the
receiver hunts again from the next byte (LEN cannot be trusted, so nothing is skipped). A
CLASSIFY frame is accepted when fewer than ``max_in_flight`` images are in the network (counted
from acceptance to :attr:`result_taken`); its tag byte is kept and its image bytes go to
``image`` exactly as received, stalling ``i`` while the network stalls. Otherwise its payload
is read and dropped and the ticket says ``busy``. The ticket of a frame is made after CHECK,
in frame order: an error (overrun before framing before checksum before busy) or the reply.
An accepted image always reaches the network whole and its ticket always says to take its
result (``discard`` for an error), so the results stay paired with the frames.

Timeout: inside a frame, ``timeout_cycles`` cycles without a received byte end it with a
``timeout`` ticket; an accepted image's missing bytes are sent to the network as zeros first
(its result is discarded). ``overrun`` (a byte was lost before ``i``) marks the frame being
received, or the next one.

Tickets: :data:`TICKET_LAYOUT`. A ticket that carries no image result is made only while
fewer than ``ticket_depth - max_in_flight`` tickets wait (``ticket_level``), so there is always
room for the tickets of accepted images; beyond that a reply is dropped (the board is flooded
with requests faster than it answers them).

Latency (:attr:`FrameReceiver.latency`): an image byte passes from ``i`` to ``image`` in the
cycle it is taken; a frame's ticket is offered in the cycle its CHECK byte is taken (a header
error's in the cycle after the second LEN byte). Clock domain ``sync``; ``rst`` returns to
hunting and forgets the images in flight (reset the network with it).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from bincount import protocol as P

from ._common import check_int

__all__ = ["FrameReceiver", "TICKET_LAYOUT", "RX_LAYOUT", "KIND_INFO", "KIND_RESULT",
           "KIND_ERROR"]

KIND_INFO, KIND_RESULT, KIND_ERROR = 0, 1, 2

#: One reply to make: ``kind`` (INFO, RESULT or ERROR), ``discard`` (take one network result
#: and drop it first), the frame's ``tag`` and ``command``, and the error ``code``.
TICKET_LAYOUT = data.StructLayout({"kind": 2, "discard": 1, "tag": 8, "command": 8, "code": 4})
#: A received byte and its framing-error flag.
RX_LAYOUT = data.StructLayout({"data": 8, "framing_error": 1})


class FrameReceiver(wiring.Component):
    """Protocol receiver for images of ``image_bytes`` bytes (module docstring)."""

    def __init__(self, image_bytes, timeout_cycles, max_in_flight=P.MAX_IN_FLIGHT,
                 ticket_depth=8):
        self.image_bytes = check_int("image bytes", image_bytes, (1, 0xFFFE))
        self.timeout_cycles = check_int("timeout cycles", timeout_cycles, (2, 1 << 40))
        self.max_in_flight = check_int("images in flight", max_in_flight, (1, 255))
        self.ticket_depth = check_int("ticket depth", ticket_depth,
                                      (max_in_flight + 1, 1 << 16))
        super().__init__({
            "i": In(stream.Signature(RX_LAYOUT)),
            "overrun": In(1),
            "image": Out(stream.Signature(8)),
            "ticket": Out(stream.Signature(TICKET_LAYOUT)),
            "ticket_level": In(range(self.ticket_depth + 1)),
            "result_taken": In(1),
            "in_frame": Out(1),
            "in_flight": Out(range(self.max_in_flight + 1)),
        })

    @property
    def latency(self):
        """Cycles from an image byte on ``i`` to the same byte on ``image``: 0 (it passes
        through in the cycle it is taken)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        n = self.image_bytes
        byte, ferr = self.i.payload.data, self.i.payload.framing_error
        take = Signal(name="take")
        m.d.comb += self.i.ready.eq(take)
        got = self.i.valid & take

        version = Signal(8, name="version")
        command = Signal(8, name="command")
        length = Signal(16, name="length")
        remaining = Signal(range(n + 1), name="remaining")
        total = Signal(8, name="total")                 # running sum from VERSION on
        tag = Signal(8, name="tag")
        feed = Signal(name="feed")                      # this frame's image goes to the network
        frame_ferr = Signal(name="frame_ferr")
        frame_overrun = Signal(name="frame_overrun")
        pending_overrun = Signal(name="pending_overrun")
        idle = Signal(range(self.timeout_cycles + 1), name="idle")
        timed_out = Signal(name="timed_out")

        # tickets
        t = self.ticket.payload
        push_image = Signal(name="push_image")          # a ticket that takes a network result
        push_other = Signal(name="push_other")          # any other ticket (dropped when full)
        room = self.ticket_level < self.ticket_depth - self.max_in_flight
        m.d.comb += self.ticket.valid.eq(push_image | (push_other & room))

        # images in flight
        accept = Signal(name="accept")
        m.d.sync += self.in_flight.eq(self.in_flight + accept - self.result_taken)

        hunting = Signal(name="hunting")
        m.d.comb += self.in_frame.eq(~hunting)
        with m.If(hunting | got):
            m.d.sync += idle.eq(0)
        with m.Elif(~self.i.valid & (idle != self.timeout_cycles)):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += timed_out.eq(idle == self.timeout_cycles)

        def add(value):
            return total.eq(total + value)

        def ticket_error(code, image):
            m.d.comb += [t.kind.eq(KIND_ERROR), t.code.eq(code), t.discard.eq(image),
                         t.tag.eq(tag), t.command.eq(command)]
            if isinstance(image, bool):
                m.d.comb += (push_image if image else push_other).eq(1)
            else:
                m.d.comb += [push_image.eq(image), push_other.eq(~image)]

        with m.FSM(init="HUNT0"):
            with m.State("HUNT0"):
                m.d.comb += [hunting.eq(1), take.eq(1)]
                with m.If(got & ~ferr & (byte == P.MAGIC[0])):
                    m.next = "HUNT1"
            with m.State("HUNT1"):
                m.d.comb += [hunting.eq(1), take.eq(1)]
                with m.If(got):
                    with m.If(~ferr & (byte == P.MAGIC[1])):
                        m.d.sync += [frame_ferr.eq(0), frame_overrun.eq(pending_overrun),
                                     pending_overrun.eq(0), total.eq(0), tag.eq(0),
                                     command.eq(0), feed.eq(0)]
                        m.next = "VERSION"
                    with m.Elif(ferr | (byte != P.MAGIC[0])):
                        m.next = "HUNT0"
            for state, nxt, field in (("VERSION", "TYPE", version), ("TYPE", "LEN0", command),
                                      ("LEN0", "LEN1", length[:8]),
                                      ("LEN1", "DECIDE", length[8:])):
                with m.State(state):
                    m.d.comb += take.eq(1)
                    with m.If(got):
                        m.d.sync += [field.eq(byte), add(byte)]
                        m.next = nxt
                    with m.Elif(timed_out):
                        ticket_error(P.ERR_TIMEOUT, False)
                        m.next = "HUNT0"
            with m.State("DECIDE"):
                m.next = "HUNT0"
                with m.If(version != P.VERSION):
                    ticket_error(P.ERR_BAD_VERSION, False)
                with m.Elif(command == P.CMD_INFO):
                    with m.If(length != 0):
                        ticket_error(P.ERR_BAD_LENGTH, False)
                    with m.Else():
                        m.next = "CHECK"
                with m.Elif(command == P.CMD_CLASSIFY):
                    with m.If(length != P.classify_length(n)):
                        ticket_error(P.ERR_BAD_LENGTH, False)
                    with m.Else():
                        free = self.in_flight < self.max_in_flight
                        m.d.comb += accept.eq(free)
                        m.d.sync += [feed.eq(free), remaining.eq(n)]
                        m.next = "TAG"
                with m.Else():
                    ticket_error(P.ERR_UNKNOWN_COMMAND, False)
            with m.State("TAG"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.d.sync += [tag.eq(byte), add(byte), frame_ferr.eq(frame_ferr | ferr)]
                    m.next = "PAYLOAD"
                with m.Elif(timed_out):
                    m.next = "PAD"
                    with m.If(~feed):
                        ticket_error(P.ERR_TIMEOUT, False)
                        m.next = "HUNT0"
            with m.State("PAYLOAD"):
                m.d.comb += [take.eq(~feed | self.image.ready),
                             self.image.valid.eq(feed & self.i.valid),
                             self.image.payload.eq(byte)]
                with m.If(got):
                    m.d.sync += [add(byte), remaining.eq(remaining - 1),
                                 frame_ferr.eq(frame_ferr | ferr)]
                    with m.If(remaining == 1):
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    m.next = "PAD"
                    with m.If(~feed):
                        ticket_error(P.ERR_TIMEOUT, False)
                        m.next = "HUNT0"
            with m.State("PAD"):                        # an accepted image cut short: zeros
                m.d.comb += [self.image.valid.eq(1), self.image.payload.eq(0)]
                with m.If(self.image.ready):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        ticket_error(P.ERR_TIMEOUT, True)
                        m.next = "HUNT0"
            with m.State("CHECK"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.next = "HUNT0"
                    ok = (total + byte)[:8] == 0
                    with m.If(frame_overrun | pending_overrun):
                        ticket_error(P.ERR_OVERRUN, feed)
                        m.d.sync += pending_overrun.eq(0)
                    with m.Elif(frame_ferr | ferr):
                        ticket_error(P.ERR_FRAMING, feed)
                    with m.Elif(~ok):
                        ticket_error(P.ERR_CHECKSUM, feed)
                    with m.Elif(command == P.CMD_INFO):
                        m.d.comb += [t.kind.eq(KIND_INFO), t.command.eq(command),
                                     push_other.eq(1)]
                    with m.Elif(~feed):
                        ticket_error(P.ERR_BUSY, False)
                    with m.Else():
                        m.d.comb += [t.kind.eq(KIND_RESULT), t.tag.eq(tag),
                                     t.command.eq(command), push_image.eq(1)]
                with m.Elif(timed_out):
                    ticket_error(P.ERR_TIMEOUT, feed)
                    m.next = "HUNT0"
        with m.If(self.overrun):                        # after the FSM: a pulse is never lost
            m.d.sync += pending_overrun.eq(1)
        return m
