"""Head engine: global pool, FC layer and argmax on the last stage's residual stream.

Computes docs/conventions.md "Whole network", Head, for images back to back::

    pool[c]   = sum over the last map's pixels of r[c]                 (res_bits + log2(pixels))
    acc[k]    = sum_c W_int[k, c] * pool[c]                           one multiplier, k-major
    logit[k]  = sat_logit(((acc[k] << e_k) + O_k) >> S)               M_k = 2**e_k: a shift
    class     = argmax_k logit[k]                                      lowest index on ties

Streams:

- ``i``: the stage engines' format (``P = lanes`` channels of one pixel per beat, ``C / P``
  beats per pixel in ascending groups, pixels in raster order, images back to back).
- ``o``: one beat per image, :data:`HeadEngine.result_layout` (``amaranth.lib.data``):
  ``prediction`` (unsigned, the class index) at the low bits, then ``logits`` (``classes``
  signed ``logit_bits`` values, class 0 first).

Structure: the input passes a :class:`StreamRegister`; each beat adds its ``P`` channels into
word ``g`` of a pool memory of two banks (one image fills a bank while the FC reads the other);
the first pixel of an image writes instead of adding. When a bank is full the FC walks class
``k`` and channel ``c``, one multiply-accumulate per cycle (``classes * C`` cycles per image),
requantises each class with a shift, keeps the running argmax and holds the result in the
output register until ``o`` takes it. The FC of the next image starts when the previous result
has been taken; the input stalls only when both banks hold images not yet through the FC.

Latency (:attr:`HeadEngine.latency`): from the cycle the last beat of an image is accepted on
``i`` to the cycle its result is valid on ``o``, with ``o`` ready and the FC idle. Clock domain
``sync``; ``rst`` empties the engine.
"""

import numpy as np
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from bincount.errors import BincountError

from ._common import check_int, delay, delay_valid
from .block_params import pack_words, to_unsigned
from .stream_register import StreamRegister

__all__ = ["HeadEngine", "HeadParams"]

#: Cycles of the FC pipeline from a MAC's issue to the logit register (read, operand
#: registers, product, accumulate, shift, offset, saturate).
FC_PIPE = 7


class HeadParams:
    """The head of an export and the lanes of its input stream, checked."""

    def __init__(self, export, lanes):
        from bincount.model.export.network_file import export_meta

        meta = export_meta(export)
        hd, fmt = meta["head"], meta["formats"]
        self.cin, self.classes, self.pool = int(hd["cin"]), int(hd["classes"]), int(hd["pool"])
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 \
                or lanes & (lanes - 1) or self.cin % lanes:
            raise BincountError(f"head lanes must be a power of two dividing C = {self.cin}, "
                                f"got {lanes!r}")
        self.lanes = lanes
        self.res_bits, self.logit_bits = int(fmt["res_bits"]), int(fmt["logit_bits"])
        self.w_bits, self.off_bits = int(fmt["real_w_bits"]), int(fmt["real_off_bits"])
        self.weight = np.asarray(export["head.weight"], dtype=np.int64)
        self.mul = np.asarray(export["head.mul"], dtype=np.int64)
        self.offset = np.asarray(export["head.offset"], dtype=np.int64)
        self.shift = int(export["head.shift"])
        bad = [(k, int(v)) for k, v in enumerate(self.mul) if v <= 0 or v & (v - 1)]
        if bad:
            raise BincountError(f"head.mul[{bad[0][0]}] = {bad[0][1]} is not a positive power "
                                f"of two; the head engine requantises with a shift")
        self.exp = np.array([int(v).bit_length() - 1 for v in self.mul], dtype=np.int64)

    @property
    def groups(self):
        return self.cin // self.lanes

    @property
    def beat_bits(self):
        return self.lanes * self.res_bits

    @property
    def pool_bits(self):
        """Signed width of a pool sum: ``pool`` values of ``res_bits`` bits."""
        return (self.pool * (1 << (self.res_bits - 1))).bit_length() + 1

    @property
    def acc_bits(self):
        bound = self.cin * (1 << (self.pool_bits - 1)) * (1 << (self.w_bits - 1))
        return bound.bit_length() + 1

    @property
    def exp_bits(self):
        return max(1, int(self.exp.max()).bit_length())

    @property
    def ideal_cycles(self):
        """FC cycles per image: ``classes * C`` (one multiply-accumulate per cycle)."""
        return self.classes * self.cin

    @property
    def multipliers(self):
        return 1

    @property
    def weight_bits(self):
        return self.weight.size * self.w_bits

    @property
    def result_layout(self):
        return data.StructLayout({
            "prediction": max(1, ceil_log2(self.classes)),
            "logits": data.ArrayLayout(signed(self.logit_bits), self.classes)})


class HeadEngine(wiring.Component):
    """The head of an export as a stream engine (module docstring).

    Parameters
    ----------
    export : dict
        A ``bincount-network`` export.
    lanes : int
        Channels per input beat (a power of two dividing the head's ``C``).
    """

    def __init__(self, export, lanes=8):
        check_int("head lanes", lanes, (1, 4096))
        self.params = p = HeadParams(export, lanes)
        self.result_layout = p.result_layout
        super().__init__({"i": In(stream.Signature(p.beat_bits)),
                          "o": Out(stream.Signature(self.result_layout))})
        #: observation for tests: a pool sum read by the FC (class 0 pass), an FC accumulator
        self.pool_valid = Signal(name="pool_valid")
        self.pool_c = Signal(range(max(p.cin, 2)), name="pool_c")
        self.pool_value = Signal(signed(p.pool_bits), name="pool_value")
        self.acc_valid = Signal(name="acc_valid")
        self.acc_k = Signal(range(max(p.classes, 2)), name="acc_k")
        self.acc_value = Signal(signed(p.acc_bits), name="acc_value")
        pb = ceil_log2(max(p.classes, 2))
        self.port_doc = {
            "i__payload": f"last stage's output beat: {p.lanes} of {p.cin} channels x "
                          f"{p.res_bits} bits, pixels in raster order, {p.pool} pixels per image",
            "i__valid": "input beat is valid",
            "i__ready": "engine accepts the input beat this cycle",
            "o__payload": f"result of one image: bits [0, {pb}) the predicted class, then "
                          f"{p.classes} logits of {p.logit_bits} bits (class k at bits "
                          f"[{pb} + {p.logit_bits}*k, ...))",
            "o__valid": "result is valid",
            "o__ready": "consumer takes the result this cycle",
        }

    @property
    def ideal_cycles(self):
        return self.params.ideal_cycles

    @property
    def latency(self):
        """Cycles from the acceptance of an image's last input beat to its result on ``o``
        (``o`` ready, FC idle): input register 1, bank full flag 1, FC start 1, the
        ``classes * C`` MACs, the FC pipeline and the output register."""
        return 3 + self.params.ideal_cycles + FC_PIPE

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes, groups, rb, pb = p.lanes, p.groups, p.res_bits, p.pool_bits

        m.submodules.in_reg = reg = StreamRegister(p.beat_bits)
        wiring.connect(m, wiring.flipped(self.i), reg.i)
        pool = Memory(shape=lanes * pb, depth=2 * groups, init=[])
        m.submodules.pool = pool
        rmw = pool.read_port(domain="comb")
        wp = pool.write_port()
        fc_rd = pool.read_port(transparent_for=())

        # -- input side: pool sums into bank `bank_in` ----------------------------------------
        in_g = Signal(range(max(groups, 2)), name="in_g")
        in_pix = Signal(range(max(p.pool, 2)), name="in_pix")
        bank_in = Signal(name="bank_in")
        full = Signal(2, name="full")
        take = Signal(name="take")
        m.d.comb += [reg.o.ready.eq(~full.bit_select(bank_in, 1)),
                     take.eq(reg.o.valid & reg.o.ready)]
        addr = Signal(range(2 * groups), name="pool_addr")
        m.d.comb += [addr.eq(Mux(bank_in, groups, 0) + in_g), rmw.addr.eq(addr),
                     wp.addr.eq(addr), wp.en.eq(take)]
        lanes_new = []
        for q in range(lanes):
            old = Mux(in_pix == 0, 0, rmw.data[q * pb:(q + 1) * pb].as_signed())
            lanes_new.append((old + reg.o.payload[q * rb:(q + 1) * rb].as_signed())[:pb])
        m.d.comb += wp.data.eq(Cat(*lanes_new))
        image_in = Signal(name="image_in")
        m.d.comb += image_in.eq(take & (in_g == groups - 1) & (in_pix == p.pool - 1))
        with m.If(take):
            with m.If(in_g == groups - 1):
                m.d.sync += [in_g.eq(0), in_pix.eq(Mux(in_pix == p.pool - 1, 0, in_pix + 1))]
            with m.Else():
                m.d.sync += in_g.eq(in_g + 1)
        with m.If(image_in):
            m.d.sync += bank_in.eq(~bank_in)

        # -- FC: class k, channel c, one MAC per cycle ----------------------------------------
        bank_fc = Signal(name="bank_fc")
        running = Signal(name="running")
        pending = Signal(name="pending")           # an image in the FC or in the output register
        k = Signal(range(max(p.classes, 2)), name="k")
        c = Signal(range(max(p.cin, 2)), name="c")
        widx = Signal(range(max(p.classes * p.cin, 2)), name="widx")
        start = Signal(name="start")
        done_issue = Signal(name="done_issue")
        fire_o = Signal(name="fire_o")
        m.d.comb += [start.eq(~pending & full.bit_select(bank_fc, 1)),
                     done_issue.eq(running & (k == p.classes - 1) & (c == p.cin - 1))]
        set_full = Signal(2, name="set_full")
        clr_full = Signal(2, name="clr_full")
        m.d.comb += [set_full.eq(Mux(image_in, 1 << bank_in, 0)),
                     clr_full.eq(Mux(done_issue, 1 << bank_fc, 0))]
        m.d.sync += full.eq((full | set_full) & ~clr_full)
        with m.If(start):
            m.d.sync += [running.eq(1), pending.eq(1), k.eq(0), c.eq(0), widx.eq(0)]
        with m.If(running):
            m.d.sync += widx.eq(widx + 1)
            with m.If(c == p.cin - 1):
                m.d.sync += [c.eq(0), k.eq(k + 1)]
            with m.Else():
                m.d.sync += c.eq(c + 1)
        with m.If(done_issue):
            m.d.sync += [running.eq(0), bank_fc.eq(~bank_fc)]
        lane_bits = ceil_log2(lanes)
        m.d.comb += fc_rd.addr.eq(Mux(bank_fc, groups, 0) + (c >> lane_bits))
        wmem = Memory(shape=p.w_bits, depth=p.classes * p.cin,
                      init=to_unsigned(p.weight.ravel(), p.w_bits))
        m.submodules.weights = wmem
        w_rd = wmem.read_port(transparent_for=())
        m.d.comb += w_rd.addr.eq(widx)

        # +1: pool lane and weight read; both registered (+2), so that the block RAMs' clock to
        # output and the multiplier are in different cycles
        v1 = delay_valid(m, running, 1)
        lane1 = delay(m, c[:lane_bits] if lane_bits else c[:0], 1, "lane")
        c1, k1 = delay(m, c, 1, "c"), delay(m, k, 1, "k")
        pv = Signal(signed(pb), name="pool_lane")
        words = [fc_rd.data[q * pb:(q + 1) * pb] for q in range(lanes)]
        m.d.comb += pv.eq(Array(words)[lane1] if lane_bits else fc_rd.data)   # no constant *
        m.d.comb += [self.pool_valid.eq(v1 & (k1 == 0)), self.pool_c.eq(c1),
                     self.pool_value.eq(pv)]
        pv_r = Signal(signed(pb), name="fc_pool_op", reset_less=True)
        w_r = Signal(signed(p.w_bits), name="fc_weight_op", reset_less=True)
        m.d.sync += [pv_r.eq(pv), w_r.eq(w_rd.data.as_signed())]
        v1r = Signal(name="fc_v1r")
        first1r, last1r = Signal(name="fc_first1r"), Signal(name="fc_last1r")
        k1r = Signal.like(k, name="fc_k1r", reset_less=True)
        m.d.sync += [v1r.eq(v1), first1r.eq(c1 == 0), last1r.eq(c1 == p.cin - 1), k1r.eq(k1)]

        # +2: product registered (+3)
        prod = Signal(signed(pb + p.w_bits), name="prod", reset_less=True)
        m.d.sync += prod.eq(pv_r * w_r)
        v2 = Signal(name="fc_v2")
        first2, last2 = Signal(name="fc_first2"), Signal(name="fc_last2")
        k2 = Signal.like(k, name="fc_k2", reset_less=True)
        m.d.sync += [v2.eq(v1r), first2.eq(first1r), last2.eq(last1r), k2.eq(k1r)]

        # +3: accumulate (+4 holds acc[k]); constants of class k read (+4)
        acc = Signal(signed(p.acc_bits), name="fc_acc", reset_less=True)
        with m.If(v2):
            m.d.sync += acc.eq(Mux(first2, prod, acc + prod))
        v3 = Signal(name="fc_v3")
        k3 = Signal.like(k, name="fc_k3", reset_less=True)
        m.d.sync += [v3.eq(v2 & last2), k3.eq(k2)]
        m.d.comb += [self.acc_valid.eq(v3), self.acc_k.eq(k3), self.acc_value.eq(acc)]
        clayout = data.StructLayout({"exp": unsigned(p.exp_bits), "offset": signed(p.off_bits)})
        cwords = pack_words(clayout, {"exp": p.exp, "offset": p.offset}, 1)
        cwidth = clayout.size
        cmem = Memory(shape=cwidth, depth=p.classes, init=cwords)
        m.submodules.consts = cmem
        c_rd = cmem.read_port(transparent_for=())
        m.d.comb += c_rd.addr.eq(k2)

        # +4: acc << e (+5), the offset held; +5: + O (+6); +6: >> S, saturate (+7)
        eb, ob, lb = p.exp_bits, p.off_bits, p.logit_bits
        sb = p.acc_bits + (1 << eb)
        tb = max(sb, ob) + 1
        shifted = Signal(signed(sb), name="fc_shifted", reset_less=True)
        off = Signal(signed(ob), name="fc_offset", reset_less=True)
        m.d.sync += [shifted.eq(acc << c_rd.data[:eb]), off.eq(c_rd.data[eb:eb + ob].as_signed())]
        v4 = Signal(name="fc_v4")
        k4 = Signal.like(k, name="fc_k4", reset_less=True)
        m.d.sync += [v4.eq(v3), k4.eq(k3)]
        t = Signal(signed(tb), name="fc_scaled", reset_less=True)
        m.d.sync += t.eq(shifted + off)
        v4s = Signal(name="fc_v4s")
        k4s = Signal.like(k, name="fc_k4s", reset_less=True)
        m.d.sync += [v4s.eq(v4), k4s.eq(k4)]
        sh = t >> p.shift
        lo, hi = -(1 << (lb - 1)), (1 << (lb - 1)) - 1
        y = Signal(signed(lb), name="logit", reset_less=True)
        m.d.sync += y.eq(Mux(sh > hi, hi, Mux(sh < lo, lo, sh)))
        v5 = Signal(name="fc_v5")
        k5 = Signal.like(k, name="fc_k5", reset_less=True)
        m.d.sync += [v5.eq(v4s), k5.eq(k4s)]

        # +7: logit register, running argmax (lowest index on ties), output register
        logits = [Signal(signed(lb), name=f"logit{j}", reset_less=True) for j in range(p.classes)]
        best = Signal(signed(lb), name="best", reset_less=True)
        best_k = Signal.like(k, name="best_k", reset_less=True)
        pred = Signal.like(k, name="prediction", reset_less=True)
        out_valid = Signal(name="out_valid")
        better = (k5 == 0) | (y > best)
        with m.If(v5):
            for j in range(p.classes):
                with m.If(k5 == j):
                    m.d.sync += logits[j].eq(y)
            with m.If(better):
                m.d.sync += [best.eq(y), best_k.eq(k5)]
            with m.If(k5 == p.classes - 1):
                m.d.sync += [out_valid.eq(1), pred.eq(Mux(better, k5, best_k))]
        m.d.comb += fire_o.eq(self.o.valid & self.o.ready)
        with m.If(fire_o):
            m.d.sync += [out_valid.eq(0), pending.eq(0)]
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.prediction.eq(pred)]
        for j in range(p.classes):
            m.d.comb += self.o.payload.logits[j].eq(logits[j])
        return m
