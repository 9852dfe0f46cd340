# amaranth: UnusedElaboratable=no
"""Window buffer: the bit line buffer of a binary block and the read of a fold's window bits.

The input side writes a pixel's ``Cin`` activation bits as ``Cin / WB`` words of ``WB =
max(B, P)`` bits (``w``, a :func:`~bincount.gateware.line_buffer.write_signature`; map row
``y`` in slot ``y mod (3 + s)``). For a fold (``fold``, :func:`~bincount.gateware.
block_sequencer.fold_layout`) the buffer returns its ``B`` window bits::

    act = bits of input pixel (oy*s + ky - 1, ox*s + kx - 1), channels cb*B .. cb*B + B-1
        = pad word (all ``pad_bit``)      outside the map

Bit ``i`` of ``act`` is channel ``cb*B + i`` (the channel-minor order of the weights).
Padding is an address multiplexer: a padded read addresses the buffer's fill word. Where a
word holds more than ``B`` bits (``P > B``) the fold's ``B`` bits are selected after the read.

Latency: :attr:`WindowBuffer.latency` = 1 (address register) + the line buffer's read latency
(3: its RAM address is registered once more, next to the RAMs) + 1 (bit select register) = 5
cycles from ``fold`` to ``act``. A word written with ``w.en`` in cycle ``t`` can be read by a
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
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("WindowBuffer takes a BlockParams")
        self.params = p = params
        wb = max(p.bits_per_cycle, p.lanes)
        self._buf = LineBuffer(p.size, 3 + p.stride, wb, subwords=p.cin // wb,
                               fill=(1 << wb) - 1 if p.pad_bit else 0, address_register=True)
        super().__init__({"w": In(self._buf.write_signature), "fold": In(fold_layout(p)),
                          "act": Out(p.bits_per_cycle)})

    @property
    def latency(self):
        """Cycles from ``fold`` to ``act``: address register + line buffer + select register."""
        return 1 + self._buf.latency + 1

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
        a_cb = delay(m, fd.cb, 1, "a_cb")
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
        return m
