"""Reply transmitter of the board protocol (``docs/protocol.md``): one reply frame per ticket,
in ticket order, as bytes for the UART.

For each ticket of :class:`~bincount.gateware.frame_receiver.FrameReceiver` (``ticket``):

- ``discard``: take one network result from ``result`` and drop it (an accepted image whose
  frame failed), then send the ERROR reply;
- RESULT: take one network result, send ``B1 C0 01 82 LEN`` tag, class, the logits (each a
  signed little-endian 32-bit integer, sign-extended from ``logit_bits``) and CHECK;
- INFO: send the INFO reply (``info_payload``, fixed when the board is built);
- ERROR: send ``B1 C0 01 FF 05 00`` code, command, tag, detail (u16) and CHECK, where detail
  is the board's version (bad-version), the command's length (bad-length), the images in
  flight allowed (busy) or 0.

Results are paired with tickets in order: the network answers images in the order they came.
Each taken result pulses ``result_taken`` for one cycle.

Board status: ``last_class`` (the class of the last RESULT sent), ``results`` (toggles with
each RESULT) and ``last_error`` (the last reply was an ERROR).

Latency (:attr:`ReplyTransmitter.latency`): a ticket is taken in the cycle after the previous
reply's last byte was accepted; the reply's first byte is offered on ``o`` 1 cycle after the
ticket (INFO, ERROR) or the network result (RESULT) was taken. Clock domain ``sync``.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bincount import protocol as P

from ._common import check_int
from .frame_receiver import KIND_ERROR, KIND_INFO, KIND_RESULT, TICKET_LAYOUT

__all__ = ["ReplyTransmitter"]


class ReplyTransmitter(wiring.Component):
    """Reply frames from tickets and network results (module docstring).

    Parameters
    ----------
    info_payload : bytes
        The INFO reply's payload (:func:`bincount.protocol.info_payload`).
    result_layout : amaranth layout
        The network's result beat: ``prediction``, ``logits`` (``classes`` signed values).
    classes, logit_bits : int
    image_bytes : int
        Bytes of one image (for the bad-length detail of CLASSIFY).
    max_in_flight : int
        Images the receiver accepts at once (the busy detail).
    """

    def __init__(self, info_payload, result_layout, classes, logit_bits, image_bytes,
                 max_in_flight=P.MAX_IN_FLIGHT):
        self.info = bytes(info_payload)
        if len(self.info) != P.INFO_LENGTH:
            raise ValueError(f"INFO payload of {len(self.info)} bytes; expected "
                             f"{P.INFO_LENGTH}")
        self.classes = check_int("classes", classes, (1, 255))
        self.logit_bits = check_int("logit bits", logit_bits, (1, 8 * P.LOGIT_BYTES))
        self.image_bytes = image_bytes
        self.max_in_flight = max_in_flight
        self.result_layout = result_layout
        super().__init__({
            "ticket": In(stream.Signature(TICKET_LAYOUT)),
            "result": In(stream.Signature(result_layout)),
            "o": Out(stream.Signature(8)),
            "result_taken": Out(1),
            "last_class": Out(8),
            "results": Out(1),
            "last_error": Out(1),
        })

    @property
    def latency(self):
        """Cycles from taking a ticket (INFO, ERROR) or a network result (RESULT) to the reply's
        first byte on ``o``: 1."""
        return 1

    def _frame(self, type_, payload):
        """Header and payload bytes (the CHECK byte is computed while sending)."""
        n = len(payload)
        return [*P.MAGIC, P.VERSION, type_, n & 0xFF, n >> 8] + list(payload)

    def elaborate(self, platform):
        m = Module()
        tk = Signal(TICKET_LAYOUT, name="tk")
        res = Signal(self.result_layout, name="res")
        pos = Signal(range(P.result_length(self.classes) + P.FRAME_OVERHEAD + 1), name="pos")
        total = Signal(8, name="total")

        logits = []
        for k in range(self.classes):
            w = Signal(signed(8 * P.LOGIT_BYTES), name=f"logit{k}")
            m.d.comb += w.eq(res.logits[k])
            logits += [w[8 * j:8 * j + 8] for j in range(P.LOGIT_BYTES)]
        result_frame = self._frame(P.REPLY_RESULT, [tk.tag, res.prediction] + logits)
        info_frame = self._frame(P.REPLY_INFO, self.info)
        detail = Signal(16, name="detail")
        with m.Switch(tk.code):
            with m.Case(P.ERR_BAD_VERSION):
                m.d.comb += detail.eq(P.VERSION)
            with m.Case(P.ERR_BAD_LENGTH):
                m.d.comb += detail.eq(Mux(tk.command == P.CMD_CLASSIFY,
                                          P.classify_length(self.image_bytes), 0))
            with m.Case(P.ERR_BUSY):
                m.d.comb += detail.eq(self.max_in_flight)
        error_frame = self._frame(P.REPLY_ERROR, [tk.code, tk.command, tk.tag, detail[:8],
                                                  detail[8:]])

        byte = Signal(8, name="byte")
        last = Signal.like(pos, name="last")            # position of the CHECK byte
        for kind, frame in ((KIND_INFO, info_frame), (KIND_RESULT, result_frame),
                            (KIND_ERROR, error_frame)):
            with m.If(tk.kind == kind):
                m.d.comb += last.eq(len(frame))
                with m.If(pos == len(frame)):
                    m.d.comb += byte.eq(-total)
                with m.Else():
                    m.d.comb += byte.eq(Array(frame)[pos])

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                m.d.comb += self.ticket.ready.eq(1)
                with m.If(self.ticket.valid):
                    m.d.sync += [tk.eq(self.ticket.payload), pos.eq(0), total.eq(0)]
                    with m.If(self.ticket.payload.discard |
                              (self.ticket.payload.kind == KIND_RESULT)):
                        m.next = "RESULT"
                    with m.Else():
                        m.next = "SEND"
            with m.State("RESULT"):
                m.d.comb += self.result.ready.eq(1)
                with m.If(self.result.valid):
                    m.d.comb += self.result_taken.eq(1)
                    with m.If(tk.kind == KIND_RESULT):
                        m.d.sync += res.eq(self.result.payload)
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(byte)]
                with m.If(self.o.ready):
                    m.d.sync += pos.eq(pos + 1)
                    with m.If(pos >= 2):
                        m.d.sync += total.eq(total + byte)
                    with m.If(pos == last):
                        m.next = "IDLE"
                        m.d.sync += self.last_error.eq(tk.kind == KIND_ERROR)
                        with m.If(tk.kind == KIND_RESULT):
                            m.d.sync += [self.last_class.eq(res.prediction),
                                         self.results.eq(~self.results)]
        return m
