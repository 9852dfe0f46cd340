# amaranth: UnusedElaboratable=no
"""Window buffer: the bit line buffer of a binary block and the read of a fold's window bits.

The input side writes a pixel's ``Cin`` activation bits as ``Cin / WB`` words of ``WB =
max(B, P)`` bits (``w``, a :func:`~bincount.gateware.line_buffer.write_signature`; map row
``y`` in slot ``y mod (3 + s)``). For a fold (``fold``, :func:`~bincount.gateware.
block_sequencer.fold_layout`) the buffer returns its ``B`` window bits::

    act = bits of input pixel (oy*s + ky - 1, ox*s + kx - 1), channels cb*B .. cb*B + B-1
        = pad word (all ``pad_bit``)      outside the map

Bit ``i`` of ``act`` is channel ``cb*B + i`` (the channel-minor order of the weights). With
split weights (:attr:`~bincount.gateware.block_params.BlockParams.weight_split`) a second copy
of the buffer reads tap 8 of every fold ``f = 8*j + k`` as well, and ``act8`` holds its slice
``k``: the ``B/8`` bits of channels ``j*B + k*B/8 ..`` of input pixel ``(oy*s + 1, ox*s + 1)``
(the pad word's outside the map).
Padding is an address multiplexer: a padded read addresses the buffer's fill word. Where a
word holds more than ``B`` bits (``P > B``) the fold's ``B`` bits are selected after the read.

Latency: :attr:`WindowBuffer.latency` = 1 (address register) + the line buffer's read latency
(3: its RAM address is registered once more, next to the RAMs) + 1 (bit select register) = 5
cycles from ``fold`` to ``act``; 6 with split weights, ``act`` and ``act8`` together: the
tap-8 copy registers its word once more before the select (the tap-8 slice is an 8:1
multiplexer: it should not follow the RAM's output and its route to the lanes in one cycle),
and the first copy its address once more (a few bits, where a word register would make a
chain of three registers of ``B`` bits, which synthesis for xc7 turns into SRL16E shift
registers, a LUT each). A word written with ``w.en`` in cycle ``t`` can be read by a
fold presented from ``t``. Clock domain ``sync``.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with this component, and an unused one is reported on
its own.)
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import delay
from .block_params import BlockParams
from .block_sequencer import fold_layout
from .line_buffer import LineBuffer

__all__ = ["WindowBuffer"]


class WindowBuffer(wiring.Component):
    """The bit line buffer of the block ``params`` and its window read (module docstring).

    Members
    -------
    w : ``In(write_signature(W, 3+s, WB, Cin/WB))``
        Bit words from the input side.
    fold : ``In(fold_layout(params))``
        The fold whose window bits to read (read every cycle).
    act : ``Out(B)``
        The fold's window bits, ``latency`` cycles later.
    act8 : ``Out(B/8)``, split weights only
        The fold's slice of tap 8, with ``act``.
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("WindowBuffer takes a BlockParams")
        self.params = p = params
        wb = max(p.bits_per_cycle, p.lanes)
        bufs = [LineBuffer(p.size, 3 + p.stride, wb, subwords=p.cin // wb,
                           fill=(1 << wb) - 1 if p.pad_bit else 0, address_register=True)
                for _ in range(1 + p.weight_split)]
        self._buf = bufs[0]
        self._buf8 = bufs[1] if p.weight_split else None
        members = {"w": In(self._buf.write_signature), "fold": In(fold_layout(p)),
                   "act": Out(p.bits_per_cycle)}
        if p.weight_split:
            members["act8"] = Out(p.bits_per_cycle // 8)
        super().__init__(members)

    @property
    def latency(self):
        """Cycles from ``fold`` to ``act``: address register + line buffer + select register
        (+ 1 with split weights: a second address register, a word register in the tap-8
        copy)."""
        return 1 + self._buf.latency + self._word_reg + 1

    @property
    def _word_reg(self):
        """The cycle split weights add: 1 (an address register, a word register in the tap-8
        copy), else 0."""
        return int(self._buf8 is not None)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        B, P, s, K, Ho = p.bits_per_cycle, p.lanes, p.stride, 3 + p.stride, p.out_size
        WB = max(B, P)
        SB = p.cin // WB
        m.submodules.bits_buf = buf = self._buf
        buf.write_from(m, self.w)
        fd = self.fold
        oy, ox, ky, kx = fd.oy, fd.ox, fd.ky, fd.kx

        def wrap(v):
            return Mux(v >= K, v - K, v)

        # stage A: addresses registered. Padding from equality tests: row oy*s + ky - 1 is
        # outside the map only for the top tap of row 0 and (stride 1) the bottom tap of the
        # last row; columns likewise
        ix = Signal(signed(ceil_log2(p.size + 3) + 2), name="ix")
        m.d.comb += ix.eq((ox << (s - 1)) + kx - 1)
        pad = (((oy == 0) & (ky == 0)) | ((ox == 0) & (kx == 0)))
        if s == 1:
            pad = pad | ((oy == Ho - 1) & (ky == 2)) | ((ox == Ho - 1) & (kx == 2))
        a_pad = Signal(name="a_pad", reset_less=True)
        a_slot = Signal(range(K), name="a_slot", reset_less=True)
        a_ix = Signal(len(buf.r_x), name="a_ix", reset_less=True)
        m.d.sync += [a_pad.eq(pad), a_slot.eq(wrap(fd.top_slot + ky)), a_ix.eq(ix)]
        a_cb = delay(m, fd.cb, 1 + self._word_reg, "a_cb")
        if self._word_reg:                   # split weights: in step with the tap-8 copy
            a_pad, a_slot, a_ix = (delay(m, v, 1, f"{v.name}_r")
                                   for v in (a_pad, a_slot, a_ix))
        # fold cb reads word cb // (WB/B) of the pixel and takes bits (cb mod WB/B) * B of it
        FB = WB // B
        lfb = ceil_log2(FB)
        m.d.comb += [buf.r_slot.eq(a_slot), buf.r_x.eq(a_ix), buf.r_pad.eq(a_pad)]
        if SB > 1:
            m.d.comb += buf.r_sub.eq(a_cb[lfb:])

        # stage B (window word, line buffer latency later) -> fold bits selected and registered
        b_cb = delay(m, a_cb, buf.latency, "b_cb")
        act = Signal(B, name="act_c", reset_less=True)
        m.d.sync += act.eq(buf.r_data.word_select(b_cb[:lfb], B) if FB > 1 else buf.r_data)
        m.d.comb += self.act.eq(act)
        if self._buf8 is not None:
            self._tap8(m, wrap)
        return m

    def _tap8(self, m, wrap):
        """The second copy: tap 8 (``ky = kx = 2``) of channel block ``fold // 8``, slice
        ``fold mod 8`` of ``B/8`` bits, in step with the first."""
        p = self.params
        B, s, Ho = p.bits_per_cycle, p.stride, p.out_size
        WB = max(B, p.lanes)
        m.submodules.bits_buf8 = buf = self._buf8
        buf.write_from(m, self.w)
        fd = self.fold
        # stage A: row oy*s + 1 and column ox*s + 1, outside the map only at stride 1's last
        # row / column
        pad = ((fd.oy == Ho - 1) | (fd.ox == Ho - 1)) if s == 1 else 0
        a_pad = Signal(name="a8_pad", reset_less=True)
        a_slot = Signal(range(3 + s), name="a8_slot", reset_less=True)
        a_ix = Signal(len(buf.r_x), name="a8_ix", reset_less=True)
        m.d.sync += [a_pad.eq(pad), a_slot.eq(wrap(fd.top_slot + 2)),
                     a_ix.eq((fd.ox << (s - 1)) + 1)]
        # fold f = 8*j + k reads word j // (WB/B) of the pixel and slice (j mod WB/B)*8 + k
        # of B/8 bits in it: the fold's low bits
        lsl = ceil_log2(8 * WB // B)
        a_fold = delay(m, fd.fold, 1, "a8_fold")
        m.d.comb += [buf.r_slot.eq(a_slot), buf.r_x.eq(a_ix), buf.r_pad.eq(a_pad)]
        if p.cin // WB > 1:
            m.d.comb += buf.r_sub.eq(a_fold[lsl:])
        b_sl = delay(m, a_fold[:lsl], buf.latency + self._word_reg, "b8_slice")
        word = delay(m, buf.r_data, self._word_reg, "b8_word")
        act8 = Signal(B // 8, name="act8_c", reset_less=True)
        m.d.sync += act8.eq(word.word_select(b_sl, B // 8))
        m.d.comb += self.act8.eq(act8)
