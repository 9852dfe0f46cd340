# amaranth: UnusedElaboratable=no
"""Input assembler: the input side of a binary block. Takes the residual stream, writes each
beat to the residual line buffer, computes its RSign bits and assembles a pixel's bits into the
words of the bit line buffer; counts the rows that are complete.

For beat ``g`` (channels ``g*P .. g*P + P-1``) of input pixel ``(y, x)``::

    res word (slot y mod K, x, g)      = the beat as is
    bit     c of the pixel              = x[c] + rsign_bias[c] >= 0      (x[c] >= 0 without RSign)
    bit word (slot y mod K, x, j)      = bits j*WB .. j*WB + WB-1, WB = max(B, P)

``K = 3 + s`` row slots; bit ``i`` of a bit word is channel ``j*WB + i``. The stream enters
through a :class:`~bincount.gateware.pipe_register.PipeRegister` (its ``ready`` is the
assembler's, which comes from flip-flops through one gate). The input is
back-pressured only when it would overwrite a row the window still needs (``room``: the row
being received is below ``low_k`` from the sequencer, registered), and pauses for two cycles
after each row while the row counter settles. ``loaded`` counts the rows whose bits are
written; ``image_done`` (from the sequencer) takes an image's ``H`` rows off both counters.

The RSign biases are fetched ahead: the bias ROM moves on each beat and holds the words of the
next beats' groups, so a beat meets its biases in its own cycle (the ROM fills for its latency
after reset, while the input waits).

Latency: :attr:`InputAssembler.latency` = the input register's latency (1) + the RSign
compare's (1) = 2 cycles from a beat's handshake on ``i`` to the write of its bit word
(``bits_w.en``); its residual word is written as it leaves the input register.
Clock domain ``sync``; ``rst`` returns to the start of an image.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with this component, and an unused one is reported on
its own.)
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import delay, delay_valid
from .block_params import BlockParams
from .block_sequencer import row_span
from .constant_rom import ConstantROM
from .line_buffer import write_signature
from .rsign_compare import RSignCompare
from .pipe_register import PipeRegister

__all__ = ["InputAssembler"]


class InputAssembler(wiring.Component):
    """The input side of the block ``params`` (module docstring).

    Members
    -------
    i : ``In(stream.Signature(P * res_bits))``
        The input residual stream.
    bits_w : ``Out(write_signature(W, K, WB, Cin/WB))``
        Bit words for the window buffer.
    res_w : ``Out(write_signature(W, K, P * res_bits, Cin/P))``
        Beats for the shortcut.
    low_k : ``In(range(row_span + K))``; image_done : ``In(1)``
        From the sequencer.
    loaded : ``Out(range(row_span))``
        Rows of the current image whose bit words are written.
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("InputAssembler takes a BlockParams")
        self.params = p = params
        K, span, wb = 3 + p.stride, row_span(p), max(p.bits_per_cycle, p.lanes)
        self._in_reg = PipeRegister(p.beat_bits)
        self._rsign = RSignCompare(p.lanes, p.res_bits)
        self._bias = (ConstantROM(data.ArrayLayout(p.rsign_layout, p.lanes), p.rsign_words(),
                                  style=p.constant_ram, enable=True) if p.rsign else None)
        super().__init__({
            "i": In(stream.Signature(p.beat_bits)),
            "bits_w": Out(write_signature(p.size, K, wb, p.cin // wb)),
            "res_w": Out(write_signature(p.size, K, p.beat_bits, p.in_groups)),
            "low_k": In(range(span + K), init=K), "image_done": In(1),
            "loaded": Out(range(span)),
        })

    @property
    def bits_delay(self):
        """Cycles from a beat leaving the input register to its bit word's write: the RSign
        compare's latency (the beat's biases are fetched ahead and wait for it)."""
        return self._rsign.latency

    @property
    def latency(self):
        """Cycles from a beat's handshake on ``i`` to its bit word's write: the input
        register's latency + :attr:`bits_delay`."""
        return self._in_reg.latency + self.bits_delay

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, W, H, K = p.lanes, p.size, p.size, 3 + p.stride
        CGi = p.in_groups
        WB = max(p.bits_per_cycle, P)
        span = row_span(p)

        ld_g = Signal(range(max(CGi, 2)), name="ld_group")
        ld_x = Signal(range(max(W, 2)), name="ld_x")
        ld_slot = Signal(range(K), name="ld_slot")
        acc_row = Signal(range(span), name="accept_row")     # row being received (relative)
        loaded = Signal(range(span), name="rows_loaded")     # rows complete in the bit buffer
        m.d.comb += self.loaded.eq(loaded)

        # acc_row counts a finished row one cycle late (row_done registered, so that no adder
        # follows the ready comparator); the input pauses for that cycle and the next (room)
        row_done_r = Signal(name="in_row_done_r")
        # the input stream passes a pipe register first; the ready it passes back is room and
        # row_done_r (flip-flops) through a gate or two
        m.submodules.in_reg = in_reg = self._in_reg
        wiring.connect(m, wiring.flipped(self.i), in_reg.i)
        inp = in_reg.o
        # room(t) = acc_row(t) < low_k(t-1), registered, so that no comparator sits in front
        # of the input handshake. It is compared from the registers alone (no adder in front
        # of the comparator): in a cycle after which acc_row changes (a row done, an image
        # done) room goes to 0 for one cycle, a pause of one more cycle per row. low_k one
        # cycle old is safe: within an image it only grows (room is then late by a cycle), and
        # when it drops back to K at the end of an image acc_row is still counted in the old
        # image's rows for that cycle, which the old low_k bounds.
        room = Signal(init=1, name="input_room")
        room_next = Signal(name="input_room_next")
        acc_next = Signal.like(acc_row, name="accept_row_next")
        m.d.comb += room_next.eq(~row_done_r & ~self.image_done & (acc_row < self.low_k))
        m.d.sync += [acc_row.eq(acc_next), room.eq(room_next)]
        # the input waits while the bias ROM fills after reset (filled: a flip-flop)
        filled = Signal(name="bias_filled") if self._bias is not None else Const(1)
        may_take = Signal(name="in_may_take")        # room, and not the pause after a row
        m.d.comb += [may_take.eq(room & ~row_done_r), inp.ready.eq(may_take & filled)]
        beat = Signal(name="in_beat")
        m.d.comb += beat.eq(inp.valid & inp.ready)
        last_g = ld_g == CGi - 1
        last_x = ld_x == W - 1
        row_done = Signal(name="in_row_done")
        m.d.comb += row_done.eq(beat & last_g & last_x)
        m.d.sync += row_done_r.eq(row_done)
        with m.If(beat):
            m.d.sync += ld_g.eq(Mux(last_g, 0, ld_g + 1))
            with m.If(last_g):
                m.d.sync += ld_x.eq(Mux(last_x, 0, ld_x + 1))
                with m.If(last_x):
                    m.d.sync += ld_slot.eq(Mux(ld_slot == K - 1, 0, ld_slot + 1))
        m.d.comb += [self.res_w.slot.eq(ld_slot), self.res_w.x.eq(ld_x),
                     self.res_w.sub.eq(ld_g), self.res_w.data.eq(inp.payload),
                     self.res_w.en.eq(beat)]

        # RSign: the biases are fetched ahead. The bias ROM moves only when it is enabled: on
        # each beat, and on L = its latency cycles after reset that fill it with the words of
        # groups 0 .. L-1 (the input waits for them). Its words are then those of the next L
        # beats' groups, the groups repeat with period CGi, and data is the next beat's: the
        # beat meets its biases in its own cycle, and its payload waits for nothing.
        # The enable, beat | ~filled, is a flip-flop (its route to the block RAM's enable is
        # long): it is computed a cycle ahead from what decides each of its terms next cycle,
        # the input register's next valid (PipeRegister.next_valid), room, the pause after a
        # row (row_done) and the fill count.
        m.submodules.rsign = rsign = self._rsign
        if self._bias is not None:
            rom = self._bias
            m.submodules.rsign_bias = rom
            fetch_g = Signal(range(max(CGi, 2)), name="bias_fetch_group")
            filling = Signal(range(rom.latency + 1), init=rom.latency, name="bias_filling")
            advance = Signal(init=1, name="bias_advance")
            filled_next = Signal(name="bias_filled_next")
            m.d.comb += filled_next.eq(filled | (filling == 1))
            m.d.sync += [filled.eq(filled_next),
                         advance.eq((in_reg.next_valid() & room_next & ~row_done)
                                    | ~filled_next)]
            m.d.comb += [rom.en.eq(advance), rom.addr.eq(fetch_g if CGi > 1 else 0)]
            with m.If(advance):
                m.d.sync += fetch_g.eq(Mux(fetch_g == CGi - 1, 0, fetch_g + 1))
            with m.If(~filled):
                m.d.sync += filling.eq(filling - 1)
            bias = rom.data
        else:
            bias = Const(0, p.beat_bits)
        m.d.comb += [rsign.x.eq(inp.payload), rsign.bias.eq(bias), rsign.in_valid.eq(beat)]
        # the beat's position and row end travel alongside to the bit word write
        g2 = delay(m, ld_g, self.bits_delay, "in_g")
        x2 = delay(m, ld_x, self.bits_delay, "in_xpos")
        slot2 = delay(m, ld_slot, self.bits_delay, "in_slot")
        done2 = delay_valid(m, row_done, self.bits_delay)
        # WB / P beats make one bit word: word g2 // (WB/P) of the pixel, written with its last beat
        BW = WB // P
        if BW > 1:
            pix = Signal(WB - P, name="pixel_bits", reset_less=True)
            full = Signal(WB, name="pixel_word")
            m.d.comb += full.eq(Cat(pix, rsign.bits))
            with m.If(rsign.out_valid):
                m.d.sync += pix.eq(full[P:])
        else:
            full = rsign.bits
        lbw = ceil_log2(BW)
        m.d.comb += [
            self.bits_w.slot.eq(slot2), self.bits_w.x.eq(x2), self.bits_w.data.eq(full),
            self.bits_w.en.eq(rsign.out_valid & (g2[:lbw] == BW - 1 if BW > 1 else 1)),
        ]
        if p.cin // WB > 1:
            m.d.comb += self.bits_w.sub.eq(g2[lbw:])

        # an image's rows leave the counters one cycle after its last fold
        m.d.comb += acc_next.eq(acc_row + row_done_r - Mux(self.image_done, H, 0))
        m.d.sync += loaded.eq(loaded + done2 - Mux(self.image_done, H, 0))
        return m
