"""Binary-block engine: one ReActNet / Bi-Real block on a stream of residual-stream pixels.

Computes the block of :mod:`bincount.gateware.block_params` (RSign, 3x3 binary convolution with
the model's pad bit, XNOR-popcount, threshold compare or multiply baseline, shortcut, RPReLU)
for a stream of images, with ``P = lanes`` output channels in parallel and ``B =
bits_per_cycle`` window bits per lane and cycle.

Streams (``amaranth.lib.stream``, ``payload`` / ``valid`` / ``ready``):

- ``i``: the input residual stream, pixels in raster order (row ``y``, then column ``x``), each
  pixel as ``Cin / P`` beats of ``P`` channels in ascending channel groups; channel
  ``g*P + p`` of a beat is ``payload[p*16 : (p+1)*16]`` (signed, ``res`` format). Images
  follow each other without separators.
- ``o``: the output residual stream in the same layout with ``Cout`` channels at ``Ho x Wo``.
- ``w`` (only with ``weights="stream"``): weight words of ``P*B`` bits, one per fold, in the
  order of :meth:`~bincount.gateware.block_params.BlockParams.weight_words`, repeated for every
  output pixel; it enters a :class:`ClaimQueue` and a fold waits for its word.

Structure: the input stream passes a :class:`StreamRegister` (so the producer sees a
registered ``ready``); the input side applies RSign to each beat and assembles a pixel's ``Cin`` bits into
``Cin / max(B, P)`` words of a bit :class:`LineBuffer` (``3 + stride`` row slots); the raw beats go to a second
line buffer for the shortcut. A sequencer walks output pixel, channel group ``g`` and fold ``f``
(``f = tap * Cin/B + cb``, tap = ``ky*3 + kx``), one fold per cycle: it reads the ``B`` window
bits (pad bits outside the map) and the ``P*B`` weight bits of word ``g*F + f`` of the weight
memory, the ``P`` lanes XNOR-popcount and accumulate them; after the last fold the per-group
constants turn the counts into the conv output (``ThresholdCompare`` or ``BaselineScale``), the
shortcut (read during the group's first folds, pooled for a stride-2 concat downsample) is
added, RPReLU applied and the beat written to an output FIFO. A group starts only when the
input rows its window needs are in the line buffer and the output FIFO has room for it, so
stalls on ``o`` and gaps on ``i`` change timing only.

Cycles: one fold per cycle while inputs are present and the output drains, i.e. per image
``Ho*Wo*(Cout/P)*F`` plus the time to receive the first two input rows and the pipeline
latency :attr:`BinaryBlockEngine.pipeline_latency`. Weights and constants are in on-chip memories
initialised from the export (docs/engines.md says how a layer too big for them is fed).
Clock domain ``sync``; ``rst`` (synchronous) returns the engine to the start of an image.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import delay, delay_valid
from .banked_ram import BankedRAM
from .baseline_scale import BaselineScale
from .block_params import EXP_BITS, BlockParams
from .claim_queue import ClaimQueue
from .line_buffer import LineBuffer
from .rprelu_unit import RPReLUUnit
from .rsign_compare import RSignCompare
from .stream_register import StreamRegister
from .threshold_compare import ThresholdCompare
from .xnor_popcount import XnorPopcount, popcount_latency

__all__ = ["BinaryBlockEngine"]


def _sat_add(m, a, b, bits, name):
    """``sat(a + b)`` to signed ``bits`` for signed ``bits``-bit ``a``, ``b`` (combinational):
    the ``bits + 1``-bit sum overflowed when its two top bits differ (no comparators)."""
    total = Signal(signed(bits + 1), name=f"{name}_wide")
    m.d.comb += total.eq(a + b)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(total[bits] == total[bits - 1], total[:bits],
                           Mux(total[bits], lo, hi)))
    return out


def _constant_rom(m, name, width, words, addr):
    """Word ``addr`` of a read-only memory of per-group constants, 3 cycles after ``addr``:
    the memory's read register and two more (the first can become a block RAM's output
    register, the second sits in the fabric next to the logic it feeds). Bits that are the same
    in every word are wired as constants instead of being stored: registers of a constant with
    another initial value would survive synthesis as one shared flip-flop fanning out to every
    block."""
    words = [int(w) for w in words]
    ones, anys = (1 << width) - 1, 0
    for w in words:
        ones &= w
        anys |= w
    varying = ones ^ anys
    mem = Memory(shape=width, depth=len(words), init=words)
    m.submodules[name] = mem
    rd = mem.read_port(transparent_for=())
    m.d.comb += rd.addr.eq(addr)
    word = Signal(width, name=f"{name}_word")
    m.d.comb += word.eq((delay(m, rd.data, 2, name) & Const(varying, width)) | Const(ones, width))
    return word


def _lane(word, p, bits, shape=None):
    v = word[p * bits:(p + 1) * bits]
    return v.as_signed() if shape == "signed" else v


class BinaryBlockEngine(wiring.Component):
    """One binary block of an exported network as a streaming engine (module docstring).

    Parameters
    ----------
    params : BlockParams
        The layer and its knobs, from :func:`bincount.gateware.block_params.block_params`.
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("BinaryBlockEngine takes a BlockParams (see block_params())")
        self.params = p = params
        members = {"i": In(stream.Signature(p.beat_bits)),
                   "o": Out(stream.Signature(p.beat_bits))}
        if p.weights == "stream":
            members["w"] = In(stream.Signature(p.lanes * p.bits_per_cycle))
        super().__init__(members)
        self.port_doc = {
            "i__payload": f"input residual stream beat: {p.lanes} channels x {p.res_bits} bits "
                          f"(channel g*{p.lanes}+p at bits [p*{p.res_bits}, ...)), pixels in "
                          f"raster order of the {p.size}x{p.size} map, {p.in_groups} beat(s) "
                          f"per pixel",
            "i__valid": "input beat is valid",
            "i__ready": "engine accepts the input beat this cycle",
            "o__payload": f"output residual stream beat: {p.lanes} of {p.cout} channels of one "
                          f"pixel of the {p.out_size}x{p.out_size} map, same layout",
            "o__valid": "output beat is valid",
            "o__ready": "consumer accepts the output beat this cycle",
        }
        if p.weights == "stream":
            self.port_doc.update({
                "w__payload": f"weight word g*{p.folds}+f: lane p's {p.bits_per_cycle} window "
                              f"bits of fold f of output channel g*{p.lanes}+p at bits "
                              f"[p*{p.bits_per_cycle}, ...); the {p.out_groups * p.folds} words "
                              f"in order, once per output pixel ({p.out_size ** 2} times per "
                              f"image)",
                "w__valid": "weight word is valid",
                "w__ready": "engine takes the weight word this cycle (one per fold)",
            })

    # -- timing ------------------------------------------------------------------------

    @property
    def row_slots(self):
        """Rows held by the line buffers: ``3 + stride`` (the window's rows plus the rows the
        input side fills while the current output row is computed)."""
        return 3 + self.params.stride

    @property
    def conv_latency(self):
        return 1 if self.params.form == "binarized" else 3

    @property
    def rprelu_latency(self):
        if self.params.rprelu is None:
            return 0
        unit = RPReLUUnit(1, self._rprelu_form(), self.params.res_bits)
        unit._MustUse__silence = True            # asked for its latency only
        return unit.latency

    def _rprelu_form(self):
        return "shift" if self.params.rprelu == "pow2" else "multiply"

    @property
    def pipeline_latency(self):
        """Cycles from issuing a group's last fold to its beat entering the output FIFO."""
        p = self.params
        return 6 + popcount_latency(p.bits_per_cycle) + self.conv_latency + self.rprelu_latency

    @property
    def fifo_depth(self):
        """Output FIFO depth = groups that may be in flight (enough to keep folding while the
        consumer is ready)."""
        f = self.params.folds
        return -(-(f + self.pipeline_latency) // f) + 2

    # -- hardware ----------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, B, F, rb = p.lanes, p.bits_per_cycle, p.folds, p.res_bits
        H = W = p.size
        Ho, s, K = p.out_size, p.stride, self.row_slots
        CB, CGi, CGo = p.cin // B, p.in_groups, p.out_groups
        lp = popcount_latency(B)

        # ---------------- input side: RSign, pixel assembly, line buffers ----------------
        # the bit line buffer holds a pixel's Cin bits as Cin / WB words of WB = max(B, P) bits,
        # so that a fold reads (nearly) only the bits it uses: a memory WB bits wide and
        # Cin / WB times deeper instead of one Cin bits wide (fewer, fuller block RAMs)
        WB = max(B, P)
        SB = p.cin // WB
        m.submodules.bits_buf = bits_buf = LineBuffer(W, K, WB, subwords=SB,
                                                      fill=(1 << WB) - 1 if p.pad_bit else 0)
        m.submodules.res_buf = res_buf = LineBuffer(W, K, p.beat_bits, subwords=CGi)

        ld_g = Signal(range(max(CGi, 2)), name="ld_group")
        ld_x = Signal(range(max(W, 2)), name="ld_x")
        ld_slot = Signal(range(K), name="ld_slot")
        span = H + K + 2
        acc_row = Signal(range(span), name="accept_row")     # row being received (relative)
        loaded = Signal(range(span), name="rows_loaded")     # rows complete in bits_buf
        oy = Signal(range(max(Ho, 2)), name="oy")
        # Row bookkeeping in registers, so that no adder sits in the control paths:
        #   low_k = max(0, oy*s - 1) + K   (the input side may fill rows below it)
        #   need  = min(H, oy*s + 2)       (rows that must be complete before output row oy)
        low_k = Signal(range(span + K), init=K, name="low_plus_slots")
        need = Signal(range(span), init=min(H, 2), name="rows_needed")

        # acc_row counts a finished row one cycle late (row_done registered, so that no adder
        # follows the ready comparator); the input pauses for that cycle
        row_done_r = Signal(name="in_row_done_r")
        # the input stream passes a StreamRegister first: the producer sees a registered ready
        m.submodules.in_reg = in_reg = StreamRegister(p.beat_bits)
        wiring.connect(m, wiring.flipped(self.i), in_reg.i)
        inp = in_reg.o
        # room(t) = acc_row(t) < low_k(t-1): registered from acc_row's next value, so that no
        # comparator sits in front of the input handshake. low_k one cycle old is safe: within
        # an image it only grows (room is then late by a cycle), and when it drops back to K at
        # the end of an image acc_row is still counted in the old image's rows for that cycle,
        # which the old low_k bounds.
        room = Signal(init=1, name="input_room")
        acc_next = Signal.like(acc_row, name="accept_row_next")
        m.d.sync += [acc_row.eq(acc_next), room.eq(acc_next < low_k)]
        m.d.comb += inp.ready.eq(room & ~row_done_r)
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
        m.d.comb += [
            res_buf.w_slot.eq(ld_slot), res_buf.w_x.eq(ld_x), res_buf.w_sub.eq(ld_g),
            res_buf.w_data.eq(inp.payload), res_buf.w_en.eq(beat),
        ]

        m.submodules.rsign = rsign = RSignCompare(P, rb)
        if p.rsign:
            bias = _constant_rom(m, "rsign_bias", p.beat_bits, p.rsign_words(), ld_g)
        else:
            bias = Const(0, p.beat_bits)
        x_r = delay(m, inp.payload, 3, "in_x")
        m.d.comb += [rsign.x.eq(x_r), rsign.bias.eq(bias),
                     rsign.in_valid.eq(delay_valid(m, beat, 3))]
        # beat -> bits four cycles later (bias read, its two registers, RSign register)
        g2 = delay(m, ld_g, 4, "in_g")
        x2 = delay(m, ld_x, 4, "in_xpos")
        slot2 = delay(m, ld_slot, 4, "in_slot")
        done2 = delay_valid(m, row_done, 4)
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
            bits_buf.w_slot.eq(slot2), bits_buf.w_x.eq(x2), bits_buf.w_data.eq(full),
            bits_buf.w_en.eq(rsign.out_valid & (g2[:lbw] == BW - 1 if BW > 1 else 1)),
        ]
        if SB > 1:
            m.d.comb += bits_buf.w_sub.eq(g2[lbw:])

        # ---------------- sequencer: (oy, ox, group, fold), one fold per cycle ----------------
        ox = Signal(range(max(Ho, 2)), name="ox")
        cg = Signal(range(max(CGo, 2)), name="group")
        fi = Signal(range(max(F, 2)), name="fold")
        ky = Signal(range(3), name="ky")
        kx = Signal(range(3), name="kx")
        cb = Signal(range(max(CB, 2)), name="cb")
        # split weights (BlockParams.weight_split): the memories hold taps 0..7, and the
        # address stands still during the tap-8 folds
        split = p.weight_split
        WF = 8 * CB if split else F                       # weight words per group
        if split:
            tail = Signal(name="tap8_fold")
            m.d.comb += tail.eq(fi >= 8 * CB)
        waddr = Signal(range(max(CGo * WF, 2)), name="w_addr")
        top_slot = Signal(range(K), init=K - 1, name="top_slot")
        mid = Signal(name="mid_group")

        # A group starts when its rows are in (rows_ok, registered: one cycle late, and held
        # off for HOLD cycles after every output row, while need / loaded settle) and the
        # output FIFO has room for every group in flight (space = depth - in flight - level).
        depth = self.fifo_depth
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(width=p.beat_bits, depth=depth)
        space = Signal(range(depth + 1), init=depth, name="fifo_space")
        rows_ok = Signal(name="rows_ok")
        m.d.sync += rows_ok.eq(loaded >= need)
        row_adv = Signal(name="row_advance")
        held = Signal(name="start_held")
        hold = [delay_valid(m, row_adv, k) for k in range(1, 4)]
        m.d.comb += held.eq(hold[0] | hold[1] | hold[2])
        start = Signal(name="group_start")
        m.d.comb += start.eq(~mid & rows_ok & ~held & (space != 0))
        issue = Signal(name="issue")
        if p.weights == "stream":
            # streamed weights: a fold issues only when it can claim its weight word; the word
            # leaves the queue in the next cycle (ClaimQueue: the issue decision drives no
            # payload register)
            m.submodules.w_queue = w_queue = ClaimQueue(P * B)
            wiring.connect(m, wiring.flipped(self.w), w_queue.i)
            m.d.comb += [issue.eq((mid | start) & w_queue.claimable), w_queue.claim.eq(issue)]
        else:
            m.d.comb += issue.eq(mid | start)
        first = Signal(name="first_fold")
        last = Signal(name="last_fold")
        m.d.comb += [first.eq(fi == 0), last.eq(fi == F - 1)]
        last_cg = cg == CGo - 1
        last_ox = ox == Ho - 1
        last_oy = oy == Ho - 1
        img_done = Signal(name="image_done")
        m.d.comb += [row_adv.eq(issue & last & last_cg & last_ox),
                     img_done.eq(row_adv & last_oy)]
        with m.If(issue):
            m.d.sync += [
                mid.eq(~last),
                fi.eq(Mux(last, 0, fi + 1)),
                cb.eq(Mux(cb == CB - 1, 0, cb + 1)),
                waddr.eq(Mux(last & last_cg, 0, waddr + (~tail if split else 1))),
            ]
            with m.If(cb == CB - 1):
                m.d.sync += kx.eq(Mux(kx == 2, 0, kx + 1))
                with m.If(kx == 2):
                    m.d.sync += ky.eq(Mux(ky == 2, 0, ky + 1))
            with m.If(last):
                m.d.sync += cg.eq(Mux(last_cg, 0, cg + 1))
                with m.If(last_cg):
                    m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
                    with m.If(last_ox):
                        m.d.sync += [oy.eq(Mux(last_oy, 0, oy + 1)),
                                     top_slot.eq(Mux(top_slot + s >= K, top_slot + s - K,
                                                     top_slot + s)),
                                     need.eq(Mux(last_oy, min(H, 2),
                                                 Mux(need + s >= H, H, need + s))),
                                     low_k.eq(Mux(last_oy, K,
                                                  Mux(oy == 0, K + s - 1, low_k + s)))]
        # the image's rows leave the counters one cycle after its last fold (start is held)
        img_done_r = delay_valid(m, img_done, 1)
        m.d.comb += acc_next.eq(acc_row + row_done_r - Mux(img_done_r, H, 0))
        m.d.sync += [
            loaded.eq(loaded + done2 - Mux(img_done_r, H, 0)),
            space.eq(space - (issue & first) + (self.o.valid & self.o.ready)),
        ]

        # stage A: window and shortcut addresses (registered)
        def wrap(v):
            return Mux(v >= K, v - K, v)

        # padding from equality tests: row oy*s + ky - 1 is outside the map only for the top
        # tap of row 0 and (stride 1) the bottom tap of the last row; columns likewise
        ix = Signal(signed(ceil_log2(W + 3) + 2), name="ix")
        m.d.comb += ix.eq((ox << (s - 1)) + kx - 1)
        pad = (((oy == 0) & (ky == 0)) | ((ox == 0) & (kx == 0)))
        if s == 1:
            pad = pad | ((oy == Ho - 1) & (ky == 2)) | ((ox == Ho - 1) & (kx == 2))
        a_valid = delay_valid(m, issue, 1)
        a_pad = Signal(name="a_pad", reset_less=True)
        a_slot = Signal(range(K), name="a_slot", reset_less=True)
        a_ix = Signal(len(bits_buf.r_x), name="a_ix", reset_less=True)
        m.d.sync += [a_pad.eq(pad), a_slot.eq(wrap(top_slot + ky)), a_ix.eq(ix)]
        a_waddr = delay(m, waddr, 1, "a_waddr")
        a_cb = delay(m, cb, 1, "a_cb")
        # fold cb reads word cb // (WB/B) of the pixel and takes bits (cb mod WB/B) * B of it
        FB = WB // B
        lfb = ceil_log2(FB)
        m.d.comb += [bits_buf.r_slot.eq(a_slot), bits_buf.r_x.eq(a_ix),
                     bits_buf.r_pad.eq(a_pad)]
        if SB > 1:
            m.d.comb += bits_buf.r_sub.eq(a_cb[lfb:])

        # The window word leaves the line buffer (latency 2) at t0+3; the weight word is read
        # in the same cycle as it and registered once more, so both reach stage C (t0+4) with
        # no logic between a block RAM and a register, and the long route from the RAMs to
        # the P lanes ends in a register too.
        mems = p.weight_memories() if p.weights == "memory" else []
        for name, width, words in mems:
            m.submodules[name] = BankedRAM(width, len(words), words, writable=False)
            m.d.comb += m.submodules[name].r_addr.eq(a_waddr)
        b_valid = delay_valid(m, a_valid, 1)

        # stage B (window word at t0+3) -> stage C: fold bits selected and registered
        b_cb = delay(m, a_cb, 2, "b_cb")
        act = Signal(B, name="act_c", reset_less=True)
        m.d.sync += act.eq(bits_buf.r_data.word_select(b_cb[:lfb], B) if FB > 1
                           else bits_buf.r_data)
        if p.weights == "stream":
            # the word claimed with the fold's issue (on w_queue.data one cycle later),
            # delayed to meet its window bits
            wgt = delay(m, w_queue.data, 3, "wgt")
        elif split:
            # the tap-8 words of a group arrive in P*B/8-bit chunks with its first 8*CB folds
            # (at the stage where the main word is read) and wait in tap8_words for its last CB
            # folds, which take their weight word from there; the next group's chunks overwrite
            # them only after those folds have passed this stage
            w_ram, t_ram = m.submodules[mems[0][0]], m.submodules[mems[1][0]]
            t_valid = delay_valid(m, issue, 3)
            t_tail = delay(m, tail, 3, "b_tail")
            tap8 = Signal(CB * P * B, name="tap8_words", reset_less=True)
            with m.If(t_valid & ~t_tail):
                m.d.sync += tap8.eq(Cat(tap8[P * B // 8:], t_ram.r_data))
            wgt = Signal(P * B, name="wgt", reset_less=True)
            m.d.sync += wgt.eq(Mux(t_tail, tap8.word_select(b_cb, P * B) if CB > 1 else tap8,
                                   w_ram.r_data))
        else:
            wgt = delay(m, m.submodules[mems[0][0]].r_data, 1, "wgt")
        c_valid = delay_valid(m, b_valid, 2)
        c_first = delay(m, first, 4, "first")
        c_last = delay(m, last, 4, "last")

        # lanes: XNOR-popcount + accumulate over the F folds
        nbits = ceil_log2(p.n + 1)
        counts = []
        k_first = delay(m, c_first, lp, "k_first")
        k_last = delay(m, c_last, lp, "k_last")
        k_valid = delay_valid(m, c_valid, lp)
        for lane in range(P):
            pc = XnorPopcount(B)
            m.submodules[f"popcount{lane}"] = pc
            m.d.comb += [pc.act.eq(act), pc.wgt.eq(wgt[lane * B:(lane + 1) * B]),
                         pc.in_valid.eq(c_valid)]
            acc = Signal(nbits, name=f"count{lane}", reset_less=True)
            with m.If(k_valid):
                m.d.sync += acc.eq(Mux(k_first, 0, acc) + pc.count)
            counts.append(acc)
        cnt_valid = Signal(name="count_valid")
        m.d.sync += cnt_valid.eq(k_valid & k_last)

        # per-group constants (read two cycles ahead, registered twice) and the conv output
        cwords, cwidth = p.conv_words()
        c_word = _constant_rom(m, "conv_constants", P * cwidth, cwords,
                               delay(m, cg, 4 + lp - 2, "kc_cg"))
        conv = []
        conv_valid = None
        for lane in range(P):
            word = c_word[lane * cwidth:(lane + 1) * cwidth]
            if p.form == "binarized":
                tb = ceil_log2(p.n + 2)
                u = ThresholdCompare(p.n, rb)
                m.d.comb += [u.threshold.eq(word[:tb]),
                             u.hi.eq(word[tb:tb + rb].as_signed()),
                             u.lo.eq(word[tb + rb:tb + 2 * rb].as_signed())]
            else:
                u = BaselineScale(p.n, p.shift, rb, p.mul_bits, p.off_bits)
                m.d.comb += [u.mul.eq(word[:p.mul_bits].as_signed()),
                             u.offset.eq(word[p.mul_bits:p.mul_bits + p.off_bits].as_signed())]
            m.submodules[f"conv{lane}"] = u
            m.d.comb += [u.count.eq(counts[lane]), u.in_valid.eq(cnt_valid)]
            conv.append(u.y)
            conv_valid = u.out_valid

        # shortcut: read during the first R folds of a group, pooled, queued per group
        R = s * s if p.downsample else 1
        sc_bits = rb + 2
        m.submodules.sc_fifo = sc_fifo = SyncFIFOBuffered(
            width=P * rb, depth=-(-(F + self.pipeline_latency) // F) + 2)
        dy = fi[1] if R == 4 else Const(0, 1)
        dx = fi[0] if R == 4 else Const(0, 1)
        r_slot = Signal(range(K), name="sc_slot", reset_less=True)
        r_x = Signal(len(res_buf.r_x), name="sc_x", reset_less=True)
        r_sub = Signal(len(res_buf.r_sub), name="sc_sub", reset_less=True)
        sc_ph = Signal(name="sc_phase")
        m.d.comb += sc_ph.eq(issue & (fi < R))
        m.d.sync += [r_slot.eq(wrap(top_slot + 1 + dy)), r_x.eq((ox << (s - 1)) + dx),
                     r_sub.eq(cg if CGi >= CGo else cg[:ceil_log2(CGi)] if CGi > 1 else 0)]
        a_sc = delay_valid(m, sc_ph, 1)
        m.d.comb += [res_buf.r_slot.eq(r_slot), res_buf.r_x.eq(r_x), res_buf.r_sub.eq(r_sub),
                     res_buf.r_pad.eq(0)]
        # the shortcut word is registered once more after the line buffer (whose bank
        # multiplexer follows its RAMs' registers) before it reaches the pooling adders
        sc_word = delay(m, res_buf.r_data, 1, "sc_word")
        b_sc = delay_valid(m, a_sc, 3)
        b_first = delay(m, fi == 0, 4, "sc_first")
        b_last = delay(m, fi == R - 1, 4, "sc_last")
        sc_push = Signal(name="sc_push")
        m.d.sync += sc_push.eq(b_sc & b_last)
        sc_vals = []
        for lane in range(P):
            v = sc_word[lane * rb:(lane + 1) * rb].as_signed()
            a = Signal(signed(sc_bits), name=f"sc_acc{lane}", reset_less=True)
            with m.If(b_sc):
                m.d.sync += a.eq(Mux(b_first, 0, a) + v)
            sc_vals.append(((a + 2) >> 2)[:rb] if R == 4 else a[:rb])
        m.d.comb += [sc_fifo.w_data.eq(Cat(*sc_vals)), sc_fifo.w_en.eq(sc_push),
                     sc_fifo.r_en.eq(conv_valid)]

        # sum = sat(conv + shortcut), registered
        sums = []
        for lane in range(P):
            sc = sc_fifo.r_data[lane * rb:(lane + 1) * rb].as_signed()
            t = _sat_add(m, conv[lane], sc, rb, f"sum_sat{lane}")
            r = Signal(signed(rb), name=f"sum{lane}", reset_less=True)
            m.d.sync += r.eq(t)
            sums.append(r)
        sum_valid = delay_valid(m, conv_valid, 1)

        # RPReLU (constants read one cycle ahead, address = group delayed alongside)
        if p.rprelu is not None:
            rwords, rwidth = p.rprelu_words()
            r_word = _constant_rom(m, "rprelu_constants", P * rwidth, rwords,
                                   delay(m, cg, 4 + lp + self.conv_latency - 1, "r_cg"))
            form = self._rprelu_form()
            u = RPReLUUnit(P, form, rb, p.slope_bits, p.slope_frac)
            m.submodules.rprelu = u
            b0, b1, ex, ng, sl = [], [], [], [], []
            for lane in range(P):
                word = r_word[lane * rwidth:(lane + 1) * rwidth]
                b0.append(word[:rb])
                b1.append(word[rb:2 * rb])
                if form == "shift":
                    ex.append(word[2 * rb:2 * rb + EXP_BITS])
                    ng.append(word[2 * rb + EXP_BITS])
                else:
                    sl.append(word[2 * rb:2 * rb + p.slope_bits])
            m.d.comb += [u.s.eq(Cat(*sums)), u.b0.eq(Cat(*b0)), u.b1.eq(Cat(*b1)),
                         u.in_valid.eq(sum_valid)]
            if form == "shift":
                m.d.comb += [u.exp.eq(Cat(*ex)), u.neg.eq(Cat(*ng))]
            else:
                m.d.comb += u.slope.eq(Cat(*sl))
            y, y_valid = u.y, u.out_valid
        else:
            y, y_valid = Cat(*sums), sum_valid

        # output FIFO and the in-flight credit
        m.d.comb += [out_fifo.w_data.eq(y), out_fifo.w_en.eq(y_valid),
                     self.o.payload.eq(out_fifo.r_data), self.o.valid.eq(out_fifo.r_rdy),
                     out_fifo.r_en.eq(self.o.ready)]
        return m
