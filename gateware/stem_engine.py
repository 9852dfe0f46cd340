"""Stem engine: raw image bytes in, the stem's residual stream out (3x3 real conv, 3 -> C0).

Computes docs/conventions.md "Whole network", Input and Stem::

    x[c, y, x] = input_lut[c, pixel]                               (``in`` format, 12 bits)
    acc[o]     = sum_{c, ky, kx} W_int[o, c, ky, kx] * x[c, y+ky-1, x+kx-1]   (x = 0 outside)
    out[o]     = sat_res(((acc << e_o) + O_o) >> S)                M_o = 2**e_o: a shift

Streams (``amaranth.lib.stream``):

- ``i``: one uint8 byte per beat, R, G, B of a pixel, pixels in raster order, images back to
  back (3 * H * W beats per image).
- ``o``: the stage engines' format (:mod:`bincount.gateware.block_engine`): ``P = lanes``
  channels of one pixel per beat, channel ``g*P + p`` at bits ``[16p, 16p+16)``, ``C0 / P``
  beats per pixel in ascending groups, pixels in raster order.

Structure: the input passes a :class:`StreamRegister`; each byte reads the input table (a
``3 x 256``-word ROM); a pixel's three values form one ``3 * in_bits`` word of a
:class:`LineBuffer` of 4 row slots (zero padding: the fill word 0). A sequencer walks output
row, column, channel group ``g`` and tap ``t = ky*3 + kx``, one tap per cycle: ``P`` lanes each
multiply the tap's 3 input values by their 3 weights (``3P`` multipliers of ``in_bits x w_bits``)
and accumulate. After tap 8 the per-group constants requantise the accumulators and the beat
goes into an output FIFO. A group starts only when the input rows its window needs are in the
line buffer and the FIFO has room for it (a credit counter), so gaps on ``i`` and stalls on
``o`` change timing only.

Cycles per image: ``H * W * (C0/P) * 9`` (one tap per cycle). A stage-1 block at the same ``P``
takes ``H * W * (C1/P) * 9*C0/B``, the same or more (``B <= C0``, ``C1 >= C0``), so the stem
keeps pace. Input: 3 beats per pixel against ``9 * C0/P`` compute cycles per pixel.

Latency (:attr:`StemEngine.latency`): from the cycle the last tap of a group issues to the
cycle its beat is valid on ``o`` (no stall). Clock domain ``sync``; ``rst`` returns the engine
to the start of an image.
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from ._common import check_int, delay, delay_valid
from .block_params import pack_words, to_unsigned
from .line_buffer import LineBuffer
from .stream_register import StreamRegister

__all__ = ["StemEngine", "StemParams", "stem_params"]

#: Output FIFO entries (credits): two groups in flight and room for stalls.
FIFO_DEPTH = 8
#: Row slots of the pixel line buffer: the 3 rows of the window and the row being written.
ROWS = 4
#: Pipeline registers from a tap's issue to the FIFO write (see ``elaborate``).
PIPE = 6


class StemParams:
    """The stem of an export and its parallelism, checked (see :func:`stem_params`)."""

    def __init__(self, export, lanes):
        from bincount.model.export.network_file import export_meta

        meta = export_meta(export)
        st, fmt = meta["stem"], meta["formats"]
        self.cin, self.cout, self.k, self.size = (int(st["cin"]), int(st["cout"]), int(st["k"]),
                                                  int(st["size"]))
        if (self.cin, self.k) != (3, 3):
            raise BincountError(f"stem cin={self.cin} k={self.k}; the stem engine computes a "
                                f"3x3 conv of 3 input channels")
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 \
                or lanes & (lanes - 1) or self.cout % lanes:
            raise BincountError(f"stem lanes must be a power of two dividing C0 = {self.cout}, "
                                f"got {lanes!r}")
        self.lanes = lanes
        self.in_bits, self.res_bits = int(fmt["in_bits"]), int(fmt["res_bits"])
        self.w_bits, self.off_bits = int(fmt["real_w_bits"]), int(fmt["real_off_bits"])
        self.weight = np.asarray(export["stem.weight"], dtype=np.int64)
        self.mul = np.asarray(export["stem.mul"], dtype=np.int64)
        self.offset = np.asarray(export["stem.offset"], dtype=np.int64)
        self.shift = int(export["stem.shift"])
        self.lut = np.asarray(export["input_lut"], dtype=np.int64)
        bad = [(c, int(v)) for c, v in enumerate(self.mul) if v <= 0 or v & (v - 1)]
        if bad:
            raise BincountError(f"stem.mul[{bad[0][0]}] = {bad[0][1]} is not a positive power "
                                f"of two; the stem engine requantises with a shift")
        self.exp = np.array([int(v).bit_length() - 1 for v in self.mul], dtype=np.int64)

    @property
    def groups(self):
        """Output beats per pixel: ``C0 / P``."""
        return self.cout // self.lanes

    @property
    def ideal_cycles(self):
        """Cycles per image: ``H * W * (C0/P) * 9``, one tap per cycle."""
        return self.size * self.size * self.groups * self.k * self.k

    @property
    def beat_bits(self):
        return self.lanes * self.res_bits

    @property
    def multipliers(self):
        """``3 * P``: every lane multiplies the 3 input channels of one tap per cycle."""
        return self.cin * self.lanes

    @property
    def weight_bits(self):
        return self.weight.size * self.w_bits

    @property
    def acc_bits(self):
        """Signed width of the accumulator: 27 products of ``in_bits x w_bits`` bits."""
        bound = 27 * (1 << (self.in_bits - 1)) * (1 << (self.w_bits - 1))
        return bound.bit_length() + 1

    @property
    def exp_bits(self):
        return max(1, int(self.exp.max()).bit_length())

    def weight_words(self):
        """Word ``g*9 + t``: lane ``p``'s 3 weights of tap ``t`` of channel ``g*P + p``, channel
        ``c`` at bits ``[(p*3 + c) * w_bits, ...)``."""
        p, wb = self.lanes, self.w_bits
        w = self.weight.reshape(self.cout, self.cin, 9)                  # [C0, 3, tap]
        words = []
        for g in range(self.groups):
            for t in range(9):
                vals = to_unsigned(w[g * p:(g + 1) * p, :, t].ravel(), wb)
                words.append(sum(v << (k * wb) for k, v in enumerate(vals)))
        return words

    @property
    def const_layout(self):
        """One lane's constants: ``exp`` (``e``, ``exp_bits``) then ``offset`` (``O``), lowest
        bits first."""
        return data.StructLayout({"exp": unsigned(self.exp_bits),
                                  "offset": signed(self.off_bits)})

    def const_words(self):
        """Per-group constant words (:attr:`const_layout` per lane) and one lane's width."""
        layout = self.const_layout
        return (pack_words(layout, {"exp": self.exp, "offset": self.offset}, self.lanes),
                layout.size)

    def lut_words(self):
        """Input table: word ``c*256 + v`` = ``input_lut[c, v]`` (``in_bits``, two's complement)."""
        return to_unsigned(self.lut.ravel(), self.in_bits)


def stem_params(export, lanes):
    """:class:`StemParams` of ``export`` with ``lanes`` output channels per cycle."""
    return StemParams(export, lanes)


class StemEngine(wiring.Component):
    """The stem of an export as a stream engine (module docstring).

    Parameters
    ----------
    export : dict
        A ``bincount-network`` export.
    lanes : int
        ``P``: output channels per cycle and per beat (a power of two dividing ``C0``).
    """

    def __init__(self, export, lanes=8):
        check_int("stem lanes", lanes, (1, 4096))
        self.params = p = stem_params(export, lanes)
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(p.beat_bits))})
        #: high in a cycle in which a tap issues (observation for tests)
        self.issue = Signal(name="issue")
        #: high in a cycle in which the last tap of a group issues
        self.issue_last = Signal(name="issue_last")
        self.port_doc = {
            "i__payload": f"input byte: R, G, B of a pixel, pixels in raster order of the "
                          f"{p.size}x{p.size} image, images back to back",
            "i__valid": "input byte is valid",
            "i__ready": "engine accepts the input byte this cycle",
            "o__payload": f"stem output beat: {p.lanes} of {p.cout} channels x {p.res_bits} bits "
                          f"(channel g*{p.lanes}+p at bits [p*{p.res_bits}, ...)), pixels in "
                          f"raster order, {p.groups} beat(s) per pixel",
            "o__valid": "output beat is valid",
            "o__ready": "consumer accepts the output beat this cycle",
        }

    @property
    def ideal_cycles(self):
        return self.params.ideal_cycles

    @property
    def latency(self):
        """Cycles from the issue of a group's last tap to its beat valid on ``o``: ``PIPE``
        pipeline registers, the FIFO write and the FIFO's output register."""
        return PIPE + 2

    def elaborate(self, platform):
        m = Module()
        p = self.params
        size, groups, lanes = p.size, p.groups, p.lanes
        ib, wb, rb = p.in_bits, p.w_bits, p.res_bits

        # -- input side: byte -> table -> pixel word -> line buffer ---------------------------
        m.submodules.in_reg = reg = StreamRegister(8)
        wiring.connect(m, wiring.flipped(self.i), reg.i)
        lut = Memory(shape=ib, depth=3 * 256, init=p.lut_words())
        m.submodules.lut = lut
        lut_rd = lut.read_port(transparent_for=())
        m.submodules.lb = lb = LineBuffer(size, ROWS, 3 * ib, fill=0)

        in_c = Signal(range(3), name="in_c")
        in_x = Signal(range(size), name="in_x")
        in_slot = Signal(range(ROWS), name="in_slot")
        d_acc = Signal(range(ROWS + 1), name="d_acc")     # rows accepted - current output row
        d_wr = Signal(range(ROWS + 1), name="d_wr")       # rows written - current output row
        row_done = Signal(name="row_done")                # compute side finished a row
        take = Signal(name="take")
        m.d.comb += [reg.o.ready.eq(d_acc <= 2), take.eq(reg.o.valid & reg.o.ready),
                     lut_rd.addr.eq(Cat(reg.o.payload, in_c))]
        row_in = Signal(name="row_in")
        m.d.comb += row_in.eq(take & (in_c == 2) & (in_x == size - 1))
        with m.If(take):
            with m.If(in_c == 2):
                m.d.sync += in_c.eq(0)
                with m.If(in_x == size - 1):
                    m.d.sync += [in_x.eq(0), in_slot.eq(in_slot + 1)]
                with m.Else():
                    m.d.sync += in_x.eq(in_x + 1)
            with m.Else():
                m.d.sync += in_c.eq(in_c + 1)
        m.d.sync += d_acc.eq(d_acc + row_in - row_done)
        v1 = Signal(name="lut_valid")
        c1 = Signal.like(in_c, name="lut_c")
        x1 = Signal.like(in_x, name="lut_x", reset_less=True)
        s1 = Signal.like(in_slot, name="lut_slot", reset_less=True)
        last1 = Signal(name="lut_row_last")
        m.d.sync += [v1.eq(take), c1.eq(in_c), x1.eq(in_x), s1.eq(in_slot), last1.eq(row_in)]
        r0 = Signal(ib, name="pix_r", reset_less=True)
        r1 = Signal(ib, name="pix_g", reset_less=True)
        with m.If(v1 & (c1 == 0)):
            m.d.sync += r0.eq(lut_rd.data)
        with m.If(v1 & (c1 == 1)):
            m.d.sync += r1.eq(lut_rd.data)
        m.d.comb += [lb.w_en.eq(v1 & (c1 == 2)), lb.w_data.eq(Cat(r0, r1, lut_rd.data)),
                     lb.w_x.eq(x1), lb.w_slot.eq(s1)]
        # a written word is readable with the read address presented 2 cycles after w_en
        row_written = delay_valid(m, last1, 2)
        m.d.sync += d_wr.eq(d_wr + row_written - row_done)

        # -- compute side: sequencer -----------------------------------------------------------
        ky = Signal(range(3), name="ky")
        kx = Signal(range(3), name="kx")
        g = Signal(range(max(groups, 2)), name="g")
        ox = Signal(range(size), name="ox")
        oy = Signal(range(size), name="oy")
        cur_slot = Signal(range(ROWS), name="cur_slot")
        waddr = Signal(range(max(9 * groups, 2)), name="waddr")
        used = Signal(range(FIFO_DEPTH + 1), name="used")
        fire_o = Signal(name="fire_o")
        first = (ky == 0) & (kx == 0)
        last = (ky == 2) & (kx == 2)
        rows_ok = (d_wr >= 2) | ((oy == size - 1) & (d_wr >= 1))
        issue = self.issue
        m.d.comb += [issue.eq(rows_ok & (~first | (used < FIFO_DEPTH))),
                     self.issue_last.eq(issue & last)]
        m.d.sync += used.eq(used + (issue & first) - fire_o)
        end_pixel = last & (g == groups - 1)
        end_row = end_pixel & (ox == size - 1)
        m.d.comb += row_done.eq(issue & end_row)
        with m.If(issue):
            m.d.sync += waddr.eq(Mux(end_pixel, 0, waddr + 1))
            with m.If(kx == 2):
                m.d.sync += kx.eq(0)
                with m.If(ky == 2):
                    m.d.sync += ky.eq(0)
                    with m.If(g == groups - 1):
                        m.d.sync += g.eq(0)
                        with m.If(ox == size - 1):
                            m.d.sync += [ox.eq(0), cur_slot.eq(cur_slot + 1),
                                         oy.eq(Mux(oy == size - 1, 0, oy + 1))]
                        with m.Else():
                            m.d.sync += ox.eq(ox + 1)
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
                with m.Else():
                    m.d.sync += ky.eq(ky + 1)
            with m.Else():
                m.d.sync += kx.eq(kx + 1)

        # window read (data 2 cycles later); zero word outside the map
        pad = (((ky == 0) & (oy == 0)) | ((ky == 2) & (oy == size - 1))
               | ((kx == 0) & (ox == 0)) | ((kx == 2) & (ox == size - 1)))
        m.d.comb += [lb.r_slot.eq((cur_slot + ky - 1)[:len(lb.r_slot)]),
                     lb.r_x.eq((ox + kx - 1)[:len(lb.r_x)]), lb.r_pad.eq(pad)]
        wmem = Memory(shape=lanes * 3 * wb, depth=9 * groups, init=p.weight_words())
        m.submodules.weights = wmem
        w_rd = wmem.read_port(transparent_for=())
        m.d.comb += w_rd.addr.eq(waddr)
        wword = delay(m, w_rd.data, 1, "wword")

        # +2: products (registered: +3)
        v2 = delay_valid(m, issue, 2)
        first2 = delay(m, first, 2, "first")
        last2 = delay(m, last, 2, "last")
        g2 = delay(m, g, 2, "grp")
        xs = [lb.r_data[c * ib:(c + 1) * ib].as_signed() for c in range(3)]
        prods = []
        for q in range(lanes):
            row = []
            for c in range(3):
                w = wword[(q * 3 + c) * wb:(q * 3 + c + 1) * wb].as_signed()
                pr = Signal(signed(ib + wb), name=f"prod{q}_{c}", reset_less=True)
                m.d.sync += pr.eq(xs[c] * w)
                row.append(pr)
            prods.append(row)
        v3, first3, last3 = Signal(name="v3"), Signal(name="first3"), Signal(name="last3")
        g3 = Signal.like(g2, name="grp3", reset_less=True)
        m.d.sync += [v3.eq(v2), first3.eq(first2), last3.eq(last2), g3.eq(g2)]

        # +3: accumulate (+4 holds the sum after the last tap); constants read at g3 (+4)
        ab = p.acc_bits
        accs = [Signal(signed(ab), name=f"acc{q}", reset_less=True) for q in range(lanes)]
        for q in range(lanes):
            s = prods[q][0] + prods[q][1] + prods[q][2]
            with m.If(v3):
                m.d.sync += accs[q].eq(Mux(first3, s, accs[q] + s))
        v4 = Signal(name="v4")
        m.d.sync += v4.eq(v3 & last3)
        cwords, cwidth = p.const_words()
        cmem = Memory(shape=lanes * cwidth, depth=max(groups, 1), init=cwords)
        m.submodules.consts = cmem
        c_rd = cmem.read_port(transparent_for=())
        m.d.comb += c_rd.addr.eq(g3)

        # +4: (acc << e) + O (registered: +5)
        eb, ob = p.exp_bits, p.off_bits
        tb = max(ab + (1 << eb), ob) + 1
        ts = [Signal(signed(tb), name=f"scaled{q}", reset_less=True) for q in range(lanes)]
        for q in range(lanes):
            word = c_rd.data[q * cwidth:(q + 1) * cwidth]
            e, off = word[:eb], word[eb:eb + ob].as_signed()
            m.d.sync += ts[q].eq((accs[q] << e) + off)
        v5 = Signal(name="v5")
        m.d.sync += v5.eq(v4)

        # +5: >> S, saturate (registered: +6), then the FIFO
        lo, hi = -(1 << (rb - 1)), (1 << (rb - 1)) - 1
        ys = []
        for q in range(lanes):
            sh = ts[q] >> p.shift
            y = Signal(signed(rb), name=f"y{q}", reset_less=True)
            m.d.sync += y.eq(Mux(sh > hi, hi, Mux(sh < lo, lo, sh)))
            ys.append(y)
        v6 = Signal(name="v6")
        m.d.sync += v6.eq(v5)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=p.beat_bits, depth=FIFO_DEPTH)
        m.d.comb += [fifo.w_en.eq(v6), fifo.w_data.eq(Cat(*ys)),
                     self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.o.ready), fire_o.eq(self.o.valid & self.o.ready)]
        return m
