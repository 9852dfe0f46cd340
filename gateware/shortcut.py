# amaranth: UnusedElaboratable=no
"""Shortcut: the residual line buffer of a binary block and the shortcut value of each channel
group, read while the group's folds run and queued until its conv output is ready.

For output pixel ``(oy, ox)`` and channel group ``g`` (lane ``p``, channel ``c = g*P + p``)::

    value[p] = x[c, oy, ox]                                       identity (stride 1)
             | (x00 + x01 + x10 + x11 + 2) >> 2, of channel c mod Cin  concat downsample (stride 2)

with ``x`` the block's input (residual stream, written through ``w``, a
:func:`~bincount.gateware.line_buffer.write_signature`: one beat of ``P`` channels per word,
``Cin/P`` words per pixel) and ``xij = x[c mod Cin, 2*oy + i, 2*ox + j]``. The group's first
``R`` folds (``R = 4`` pooled, else 1) each read one input pixel; their sum is pushed into a
queue of ``depth`` groups (at least the groups in flight), and ``take`` pops the head.

Latency: :attr:`Shortcut.latency` = 8 cycles from the issue of fold ``R - 1`` to ``valid`` at
the head of an empty queue: address register, line buffer (3, its RAM address registered next
to the RAMs), word register, pooling accumulator (a plain register for the identity), queue
(2). Bit order: lane ``p`` at bits ``[p*res_bits, (p+1)*res_bits)``. Clock domain
``sync``; ``rst`` empties the queue.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with this component, and an unused one is reported on
its own.)
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_int, delay, delay_valid
from .block_params import BlockParams
from .block_sequencer import fold_layout
from .line_buffer import LineBuffer

__all__ = ["Shortcut"]

#: Cycles from a write into ``SyncFIFOBuffered`` to the word at its head (empty FIFO).
_QUEUE_LATENCY = 2


class Shortcut(wiring.Component):
    """The shortcut of the block ``params``, queued for ``depth`` groups (module docstring).

    Members
    -------
    w : ``In(write_signature(W, 3+s, P*res_bits, Cin/P))``
        Input beats from the input side.
    issue : ``In(1)``; fold : ``In(fold_layout(params))``
        The folds of the sequencer.
    take : ``In(1)``
        Pop the head of the queue (only while ``valid``).
    value : ``Out(ArrayLayout(signed(res_bits), P))``; valid : ``Out(1)``
        The head of the queue: the shortcut of the oldest group not yet taken.
    """

    def __init__(self, params, depth):
        if not isinstance(params, BlockParams):
            raise TypeError("Shortcut takes a BlockParams")
        self._depth = check_int("depth", depth, (1, 1024))
        self.params = p = params
        self._buf = LineBuffer(p.size, 3 + p.stride, p.beat_bits, subwords=p.in_groups,
                               address_register=True)
        super().__init__({"w": In(self._buf.write_signature), "issue": In(1),
                          "fold": In(fold_layout(p)), "take": In(1),
                          "value": Out(data.ArrayLayout(signed(p.res_bits), p.lanes)),
                          "valid": Out(1)})

    @property
    def reads(self):
        """``R``: input pixels per output element (4 for the pooled downsample, else 1)."""
        p = self.params
        return p.stride * p.stride if p.downsample else 1

    @property
    def latency(self):
        """Cycles from the issue of fold ``R - 1`` to ``valid`` (empty queue): 8."""
        return 1 + self._buf.latency + 1 + 1 + _QUEUE_LATENCY

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, rb, s, K = p.lanes, p.res_bits, p.stride, 3 + p.stride
        CGi, CGo = p.in_groups, p.out_groups
        R = self.reads
        m.submodules.res_buf = buf = self._buf
        buf.write_from(m, self.w)
        m.submodules.sc_fifo = fifo = SyncFIFOBuffered(width=P * rb, depth=self._depth)
        fd = self.fold
        fi, cg = fd.fold, fd.group

        def wrap(v):
            return Mux(v >= K, v - K, v)

        # read during the first R folds of a group: addresses registered
        dy = fi[1] if R == 4 else Const(0, 1)
        dx = fi[0] if R == 4 else Const(0, 1)
        r_slot = Signal(range(K), name="sc_slot", reset_less=True)
        r_x = Signal(len(buf.r_x), name="sc_x", reset_less=True)
        r_sub = Signal(len(buf.r_sub), name="sc_sub", reset_less=True)
        sc_ph = Signal(name="sc_phase")
        m.d.comb += sc_ph.eq(self.issue & (fi < R))
        m.d.sync += [r_slot.eq(wrap(fd.top_slot + 1 + dy)), r_x.eq((fd.ox << (s - 1)) + dx),
                     r_sub.eq(cg if CGi >= CGo else cg[:ceil_log2(CGi)] if CGi > 1 else 0)]
        a_sc = delay_valid(m, sc_ph, 1)
        m.d.comb += [buf.r_slot.eq(r_slot), buf.r_x.eq(r_x), buf.r_sub.eq(r_sub),
                     buf.r_pad.eq(0)]
        # the word is registered once more after the line buffer (whose bank multiplexer
        # follows its RAMs' registers) before it reaches the pooling adders
        word_lat = buf.latency + 1
        sc_word = delay(m, buf.r_data, 1, "sc_word")
        b_sc = delay_valid(m, a_sc, word_lat)
        b_last = delay(m, fi == R - 1, 1 + word_lat, "sc_last")
        push = Signal(name="sc_push")
        m.d.sync += push.eq(b_sc & b_last)
        b_first = delay(m, fi == 0, 1 + word_lat, "sc_first") if R == 4 else None
        vals = []
        for lane in range(P):
            v = sc_word[lane * rb:(lane + 1) * rb].as_signed()
            if R == 4:
                a = Signal(signed(rb + 2), name=f"sc_acc{lane}", reset_less=True)
                with m.If(b_sc):
                    m.d.sync += a.eq(Mux(b_first, 0, a) + v)
                vals.append(((a + 2) >> 2)[:rb])
            else:
                # one read per group: the word itself (registered), no adder
                a = Signal(signed(rb), name=f"sc_val{lane}", reset_less=True)
                with m.If(b_sc):
                    m.d.sync += a.eq(v)
                vals.append(a)
        m.d.comb += [fifo.w_data.eq(Cat(*vals)), fifo.w_en.eq(push), fifo.r_en.eq(self.take),
                     self.value.eq(fifo.r_data), self.valid.eq(fifo.r_rdy)]
        return m
