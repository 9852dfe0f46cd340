"""The board protocol's gateware (frame receiver, reply transmitter) in the Amaranth simulator,
byte by byte, around a small stand-in network (12-byte images; the whole network runs
through the same parts on Verilator in ``sim/test_board.py``): INFO, CLASSIFY back to back,
every error reply, resynchronisation on garbage, the busy limit and the frame timeout."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bincount import protocol as P
from bincount.gateware.board_core import TICKET_DEPTH
from bincount.gateware.frame_receiver import RX_LAYOUT, FrameReceiver
from bincount.gateware.reply_transmitter import ReplyTransmitter

IMAGE = 12
CLASSES = 10
LAYOUT = data.StructLayout({"prediction": 4,
                            "logits": data.ArrayLayout(signed(32), CLASSES)})
INFO = P.info_payload(2, 2, 3, CLASSES, 32, 16, bytes(range(8)), 1234, 4)


def fake_result(image):
    """What the stand-in network answers: class = byte sum mod 8, logit k = sum*(k+1) - 1000."""
    s = sum(image)
    return s % 8, [s * (k + 1) - 1000 for k in range(CLASSES)]


class FakeNetwork(wiring.Component):
    """Takes ``IMAGE`` bytes per image; the results wait in a FIFO of 8 (a pipeline that
    holds several images, like the real network) and its input stalls when that is full."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(LAYOUT))

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=16, depth=8)
        total = Signal(16)
        count = Signal(range(IMAGE + 1))
        s = total + self.i.payload
        m.d.comb += [self.i.ready.eq(fifo.w_rdy), fifo.w_data.eq(s),
                     fifo.w_en.eq(self.i.valid & (count == IMAGE - 1))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(count == IMAGE - 1):
                m.d.sync += [count.eq(0), total.eq(0)]
            with m.Else():
                m.d.sync += [count.eq(count + 1), total.eq(s)]
        r = fifo.r_data
        m.d.comb += [self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
                     self.o.payload.prediction.eq(r[:3])]
        for k in range(CLASSES):
            m.d.comb += self.o.payload.logits[k].eq(r * (k + 1) - 1000)
        return m


class Harness(wiring.Component):
    """Receiver -> tickets -> transmitter around the stand-in network, wired as BoardCore."""

    i: In(stream.Signature(RX_LAYOUT))
    o: Out(stream.Signature(8))
    overrun: In(1)

    def __init__(self, timeout=400):
        self.timeout = timeout
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.recv = recv = FrameReceiver(IMAGE, self.timeout, ticket_depth=TICKET_DEPTH)
        m.submodules.tickets = tk = SyncFIFOBuffered(width=recv.ticket.payload.shape().size,
                                                     depth=TICKET_DEPTH)
        m.submodules.net = net = FakeNetwork()
        m.submodules.xmit = xmit = ReplyTransmitter(INFO, LAYOUT, CLASSES, 32, IMAGE)
        wiring.connect(m, wiring.flipped(self.i), recv.i)
        m.d.comb += [recv.overrun.eq(self.overrun),
                     tk.w_data.eq(recv.ticket.payload), tk.w_en.eq(recv.ticket.valid),
                     recv.ticket.ready.eq(tk.w_rdy), recv.ticket_level.eq(tk.level),
                     xmit.ticket.payload.eq(tk.r_data), xmit.ticket.valid.eq(tk.r_rdy),
                     tk.r_en.eq(xmit.ticket.ready), recv.result_taken.eq(xmit.result_taken)]
        wiring.connect(m, recv.image, net.i)
        wiring.connect(m, net.o, xmit.result)
        wiring.connect(m, xmit.o, wiring.flipped(self.o))
        return m


def exchange(items, timeout=400, hold_output=0, idle_after=2000):
    """Send ``items`` (bytes, or ``("ferr", byte)`` for a byte with a framing error, or
    ``("overrun",)``, or ``("wait", cycles)``) one byte per cycle when the receiver takes it;
    ``o.ready`` stays low for the first ``hold_output`` cycles. Returns the reply frames."""
    dut = Harness(timeout)
    out = bytearray()
    seq = []
    for it in items:
        if isinstance(it, (bytes, bytearray)):
            seq += [(b, 0) for b in it]
        elif it[0] == "ferr":
            seq.append((it[1], 1))
        else:
            seq.append(it)

    async def tb(ctx):
        cycle = 0
        for it in seq + [("wait", idle_after)]:
            ctx.set(dut.overrun, it[0] == "overrun")     # a one-cycle pulse
            waits = 1 if it[0] == "overrun" else it[1] if it[0] == "wait" else None
            ctx.set(dut.i.valid, waits is None)
            if waits is None:
                ctx.set(dut.i.payload, {"data": it[0], "framing_error": it[1]})
            while True:
                ctx.set(dut.o.ready, cycle >= hold_output)
                took = waits is None and ctx.get(dut.i.ready)
                if ctx.get(dut.o.valid) and cycle >= hold_output:
                    out.append(ctx.get(dut.o.payload))
                await ctx.tick()
                ctx.set(dut.overrun, 0)
                cycle += 1
                if waits is not None:
                    waits -= 1
                    if waits <= 0:
                        break
                elif took:
                    break
            ctx.set(dut.i.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    dec = P.FrameDecoder()
    frames = dec.feed(bytes(out))
    assert dec.skipped == 0 and not dec.buf, f"stray bytes from the board: {out.hex()}"
    assert all(f.version == P.VERSION for f in frames)
    return frames


def image(k):
    return bytes((k * 37 + j * 11) & 0xFF for j in range(IMAGE))


def result_frame(tag, img):
    pred, logits = fake_result(img)
    return (P.REPLY_RESULT, P.result_payload(tag, pred, logits))


def error_frame(code, command=0, tag=0, detail=0):
    return (P.REPLY_ERROR, P.error_payload(code, command, tag, detail))


def kinds(frames):
    return [(f.type, f.payload) for f in frames]


def test_info_and_classify_back_to_back():
    imgs = [image(k) for k in range(3)]
    frames = exchange([P.info_request()] + [P.classify_request(10 + k, im)
                                            for k, im in enumerate(imgs)])
    assert kinds(frames) == [(P.REPLY_INFO, INFO)] + [result_frame(10 + k, im)
                                                      for k, im in enumerate(imgs)]
    info = P.parse_info(frames[0].payload)
    assert (info.cycles_per_image, info.divisor, info.classes) == (1234, 4, CLASSES)


def test_error_replies_keep_request_order():
    bad_sum = bytearray(P.classify_request(7, image(1)))
    bad_sum[-1] ^= 0x01
    frames = exchange([
        P.frame(0x33, b"\x01\x02"),                       # unknown command
        P.frame(P.CMD_INFO, b"", version=2),              # other protocol version
        P.frame(P.CMD_INFO, b"\x00"),                     # INFO with a payload
        P.frame(P.CMD_CLASSIFY, bytes(5)),                # image of the wrong length
        bytes(bad_sum),                                   # checksum error: result dropped
        P.classify_request(8, image(2)),
    ])
    assert kinds(frames) == [
        error_frame(P.ERR_UNKNOWN_COMMAND, 0x33),
        error_frame(P.ERR_BAD_VERSION, P.CMD_INFO, detail=P.VERSION),
        error_frame(P.ERR_BAD_LENGTH, P.CMD_INFO, detail=0),
        error_frame(P.ERR_BAD_LENGTH, P.CMD_CLASSIFY, detail=IMAGE + 1),
        error_frame(P.ERR_CHECKSUM, P.CMD_CLASSIFY, 7),
        result_frame(8, image(2)),
    ]


def test_resynchronises_on_garbage():
    garbage = bytes([0x00, 0xB1, 0xB1, 0x17, 0xC0, 0xFF, 0xB1])
    frames = exchange([garbage, P.classify_request(1, image(4)), b"\x42\xb1\x00",
                       P.info_request()])
    assert kinds(frames) == [result_frame(1, image(4)), (P.REPLY_INFO, INFO)]


def test_framing_error_and_overrun_are_reported():
    req = P.classify_request(3, image(5))
    frames = exchange([req[:9], ("ferr", req[9]), req[10:], P.info_request(),
                       ("overrun",), P.classify_request(4, image(6)),
                       P.classify_request(5, image(7))])
    assert kinds(frames) == [error_frame(P.ERR_FRAMING, P.CMD_CLASSIFY, 3),
                             (P.REPLY_INFO, INFO),
                             error_frame(P.ERR_OVERRUN, P.CMD_CLASSIFY, 4),
                             result_frame(5, image(7))]


def test_busy_beyond_max_in_flight():
    n = P.MAX_IN_FLIGHT + 3
    reqs = [P.classify_request(k, image(k)) for k in range(n)]
    # replies held back: the transmitter has taken the first result and waits to send it;
    # MAX_IN_FLIGHT more images are accepted, the rest are busy until the replies go out
    frames = exchange(reqs + [("wait", 5000), P.classify_request(99, image(9))],
                      hold_output=4000)
    accepted = P.MAX_IN_FLIGHT + 1
    want = [result_frame(k, image(k)) for k in range(accepted)]
    want += [error_frame(P.ERR_BUSY, P.CMD_CLASSIFY, k, P.MAX_IN_FLIGHT)
             for k in range(accepted, n)]
    want += [result_frame(99, image(9))]
    assert kinds(frames) == want


def test_timeout_pads_the_image_and_recovers():
    req = P.classify_request(6, image(3))
    frames = exchange([req[:12], ("wait", 600), P.classify_request(7, image(8)),
                       P.info_request()[:4], ("wait", 600), P.info_request()], timeout=400)
    assert kinds(frames) == [error_frame(P.ERR_TIMEOUT, P.CMD_CLASSIFY, 6),
                             result_frame(7, image(8)),
                             error_frame(P.ERR_TIMEOUT, P.CMD_INFO),
                             (P.REPLY_INFO, INFO)]


def test_board_core_ports_info_and_rate_check():
    import pytest

    from bincount.errors import BincountError
    from bincount.gateware.board_core import BoardCore, divisor_for
    from bincount.hw.network_emit import export_digest
    from network_cases import small_network

    export, _ = small_network()
    core = BoardCore(export, 4, 4, divisor=4)
    assert sorted(core.signature.members.keys()) == ["leds", "uart_rx", "uart_tx"]
    info = P.parse_info(core.info)
    assert (info.height, info.width, info.channels, info.classes, info.logit_bits,
            info.logit_frac) == (32, 32, 3, 10, 32, 16)
    assert info.digest.hex() == export_digest(export)[:16]
    assert (info.cycles_per_image, info.divisor) == (core.network.ideal_cycles, 4)
    # one lane everywhere: 147,456 cycles per image, more than 10 * 4 * 3080 on the line
    with pytest.raises(BincountError, match=r"UART divisor 4 brings an image in 123200 cycles, "
                                            r"faster than the network takes one \(147456 "
                                            r"cycles\); .* use a divisor >= 5"):
        BoardCore(export, 1, 1, 1, divisor=4)
    assert divisor_for(25e6, 115200) == 217 and divisor_for(50e6, 3_000_000) == 17
    with pytest.raises(BincountError, match="divisor 4 gives 250000 baud, 12.5% off"):
        divisor_for(1e6, 1e6 / 4.5)
    with pytest.raises(BincountError, match="needs 3 cycles per bit"):
        divisor_for(12e6, 4_000_000)
