# amaranth: UnusedElaboratable=no
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

Parts (each a component with its own latency; docs/engines.md draws them)::

    i -> InputAssembler --bits_w--> WindowBuffer --act--.
              |  (RSign)                                 +-> LaneArray -> ConvOutput -.
              '--res_w--> Shortcut ----------------------|------------------------ SaturatingAdd
    BlockSequencer --fold--> WindowBuffer, Shortcut,     |                              |
                     weight memory | ClaimQueue ---wgt--'              RPReLULanes <---'
                                                                            |
                                                                output FIFO -> o

The :class:`BlockSequencer` walks output pixel, channel group ``g`` and fold ``f`` (``f = tap *
Cin/B + cb``), one fold per cycle, gated by the input rows and the output FIFO's credits; the
weight word ``g*F + f`` comes from the weight memory (read at the same time as the window
word) or the weight stream. (With split weights a group has no folds of tap 8: every fold of
taps 0..7 also counts a slice of tap 8, ``B/8`` bits from a second window read and a narrow
weight memory, :attr:`~bincount.gateware.block_params.BlockParams.weight_split`.) The
pipeline latency is the sum of the parts' latencies (:attr:`BinaryBlockEngine.
pipeline_latency`), and every per-group constant ROM is addressed its own lead ahead of the
data it meets, so that no delay here is counted by hand.

Cycles: one fold per cycle while inputs are present and the output drains, i.e. per image
``Ho*Wo*(Cout/P)*F`` plus the time to receive the first two input rows and the pipeline
latency. Weights and constants are in on-chip memories initialised from the export
(docs/engines.md says how a layer too big for them is fed). Clock domain ``sync``; ``rst``
(synchronous) returns the engine to the start of an image.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with the engine, and an unused engine is reported on its
own.)
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import delay, delay_valid
from .banked_ram import BankedRAM
from .block_params import BlockParams
from .block_sequencer import BlockSequencer
from .claim_queue import ClaimQueue
from .conv_output import ConvOutput
from .input_assembler import InputAssembler
from .lane_array import LaneArray
from .lane_gatherer import LaneGatherer
from .lane_serializer import LaneSerializer
from .rprelu_lanes import RPReLULanes
from .saturating_add import SaturatingAdd
from .shortcut import Shortcut
from .window_buffer import WindowBuffer

__all__ = ["BinaryBlockEngine"]


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
        # the parts of the pipeline, in data order; their latencies make the engine's
        self._input = InputAssembler(p)
        self._window = WindowBuffer(p)
        self._lanes = LaneArray(p.lanes, p.bits_per_fold, p.folds)
        # the post-popcount units: P lanes, or Q = post_lanes shared by them (a serializer
        # hands each group's counts on Q lanes a cycle, a gatherer rebuilds the beat)
        q = p.post_params()
        self._serializer = self._gatherer = None
        if p.shared_post:
            self._serializer = LaneSerializer(p.lanes, q.lanes, ceil_log2(p.n + 1), p.out_groups)
            self._gatherer = LaneGatherer(p.lanes, q.lanes, p.res_bits)
        self._conv = ConvOutput(q)
        self._sum = SaturatingAdd(q.lanes, p.res_bits)
        self._rprelu = RPReLULanes(q) if p.rprelu is not None else None
        # the credits: groups in flight, bounded by the output FIFO (and the shortcut queue)
        self._shortcut = Shortcut(p, self.fifo_depth)
        self._sequencer = BlockSequencer(p, self.fifo_depth)
        self._w_queue = ClaimQueue(p.lanes * p.bits_per_cycle) if p.weights == "stream" else None

    # -- timing ------------------------------------------------------------------------

    @property
    def row_slots(self):
        """Rows held by the line buffers: ``3 + stride`` (the window's rows plus the rows the
        input side fills while the current output row is computed)."""
        return 3 + self.params.stride

    @property
    def fetch_latency(self):
        """Cycles from a fold's issue to its window bits and weight word at the lanes: the
        window buffer's latency (the weight word is fetched to meet them)."""
        return self._window.latency

    @property
    def count_latency(self):
        """Cycles from a group's last fold's issue to its counts: fetch + lane array."""
        return self.fetch_latency + self._lanes.latency

    @property
    def serial_latency(self):
        """Cycles from a group's counts to its first slice at the conv output's inputs: the
        serializer's latency plus the conv output's constants lead (the slice waits for its
        constants); 0 without shared post-popcount units."""
        if self._serializer is None:
            return 0
        return self._serializer.latency + self._conv.constants_lead

    @property
    def serial_tail(self):
        """Cycles from a group's first slice to its last: ``P / post_lanes - 1`` (0 without
        shared post-popcount units)."""
        return 0 if self._serializer is None else self._serializer.slices - 1

    @property
    def conv_latency(self):
        """The post-popcount block's latency (1 threshold compare, 3 baseline scale)."""
        return self._conv.latency

    @property
    def rprelu_latency(self):
        """The RPReLU lanes' latency, 0 without RPReLU."""
        return 0 if self._rprelu is None else self._rprelu.latency

    @property
    def sum_latency(self):
        """Cycles from a group's last fold's issue to ``sat(conv + shortcut)`` (of its first
        slice, when the post-popcount units are shared)."""
        return self.count_latency + self.serial_latency + self.conv_latency + self._sum.latency

    @property
    def pipeline_latency(self):
        """Cycles from issuing a group's last fold to its beat entering the output FIFO:
        window buffer + lane array (+ serializer, constants lead and the slices after the
        first, when shared) + conv output + saturating add + RPReLU lanes."""
        return self.sum_latency + self.rprelu_latency + self.serial_tail

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
        m.submodules.input = inp = self._input
        m.submodules.window = win = self._window
        m.submodules.shortcut = sc = self._shortcut
        m.submodules.sequencer = seq = self._sequencer
        m.submodules.lanes = lanes = self._lanes
        m.submodules.conv = conv = self._conv
        m.submodules.sum = add = self._sum
        wiring.connect(m, wiring.flipped(self.i), inp.i)
        wiring.connect(m, inp.bits_w, win.w)
        wiring.connect(m, inp.res_w, sc.w)
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(width=p.beat_bits,
                                                            depth=self.fifo_depth)
        fold = seq.fold
        m.d.comb += [seq.loaded.eq(inp.loaded), inp.low_k.eq(seq.low_k),
                     inp.image_done.eq(seq.image_done),
                     seq.out_taken.eq(self.o.valid & self.o.ready),
                     win.fold.eq(fold), sc.fold.eq(fold), sc.issue.eq(seq.issue)]

        # the weight word of a fold, at the lanes with its window bits
        t_act = self.fetch_latency
        wgt = self._weight_word(m, seq, t_act)

        # lanes: XNOR-popcount + accumulate over the F folds (with split weights a lane's
        # window bits are the fold's B and its B/8 of tap 8, and its weights likewise)
        act = Cat(win.act, win.act8) if p.weight_split else win.act
        m.d.comb += [lanes.act.eq(act), lanes.wgt.eq(wgt),
                     lanes.in_valid.eq(delay_valid(m, seq.issue, t_act)),
                     lanes.first.eq(delay(m, seq.first, t_act, "first")),
                     lanes.last.eq(delay(m, seq.last, t_act, "last"))]

        if self._serializer is None:
            # conv output: constants of the group read constants_lead ahead of its counts
            m.d.comb += [conv.group.eq(delay(m, fold.group,
                                             self.count_latency - conv.constants_lead, "kc_cg")),
                         conv.counts.eq(lanes.counts), conv.in_valid.eq(lanes.out_valid)]
            # sum = sat(conv + shortcut); the group's shortcut leaves its queue with its conv
            # output
            m.d.comb += [sc.take.eq(conv.out_valid), add.a.eq(conv.y), add.b.eq(sc.value),
                         add.in_valid.eq(conv.out_valid)]
            # the channel group the later constants are addressed by, and its lag after the
            # issue of the group's last fold
            group, group_lag = fold.group, 0
        else:
            # shared: the group's counts as P/Q slices of Q lanes, each slice's constants read
            # constants_lead ahead of it (the slice waits for them)
            m.submodules.serializer = ser = self._serializer
            lead = conv.constants_lead
            m.d.comb += [ser.data.eq(lanes.counts),
                         ser.group.eq(delay(m, fold.group, self.count_latency, "ks_cg")),
                         ser.in_valid.eq(lanes.out_valid),
                         conv.group.eq(ser.index),
                         conv.counts.eq(delay(m, ser.out, lead, "ks_counts")),
                         conv.in_valid.eq(delay_valid(m, ser.out_valid, lead))]
            # sum: the slice of the group's shortcut, selected and registered a cycle ahead
            # (so that the multiplexer and the adder are not in one cycle); the shortcut
            # leaves its queue with the last slice. A cycle ahead of a group's first slice
            # the previous group's shortcut has left the queue: S = P/Q < F (BlockParams
            # checks it), so at least one cycle separates two groups' slices.
            at_conv = lead + conv.latency
            s_slice = delay(m, ser.slice, at_conv - 1, "ks_slice")
            s_last = delay(m, ser.last, at_conv, "ks_last")
            q_bits = conv.params.beat_bits
            b_slice = Signal(q_bits, name="shortcut_slice", reset_less=True)
            m.d.sync += b_slice.eq(sc.value.as_value().word_select(s_slice, q_bits))
            m.d.comb += [sc.take.eq(conv.out_valid & s_last), add.a.eq(conv.y),
                         add.b.eq(b_slice), add.in_valid.eq(conv.out_valid)]
            group, group_lag = ser.index, self.count_latency + ser.latency

        # RPReLU (constants read constants_lead ahead of the sum)
        if self._rprelu is not None:
            m.submodules.rprelu = act = self._rprelu
            r_group = delay(m, group, self.sum_latency - group_lag - act.constants_lead, "r_cg")
            m.d.comb += [act.group.eq(r_group), act.s.eq(add.y),
                         act.in_valid.eq(add.out_valid)]
            y, y_valid = act.y, act.out_valid
        else:
            y, y_valid = add.y, add.out_valid
        if self._gatherer is not None:
            # the slices back into one beat of P lanes
            m.submodules.gatherer = gat = self._gatherer
            post = self.sum_latency - group_lag + self.rprelu_latency
            m.d.comb += [gat.data.eq(y), gat.slice.eq(delay(m, ser.slice, post, "ks_out")),
                         gat.in_valid.eq(y_valid)]
            y, y_valid = gat.out, gat.out_valid

        # output FIFO; its level returns the sequencer's credits
        m.d.comb += [out_fifo.w_data.eq(y), out_fifo.w_en.eq(y_valid),
                     self.o.payload.eq(out_fifo.r_data), self.o.valid.eq(out_fifo.r_rdy),
                     out_fifo.r_en.eq(self.o.ready)]
        return m

    def _weight_word(self, m, seq, t_act):
        """The weight word of the fold issued ``t_act`` cycles ago, ``P`` lanes of
        :attr:`~bincount.gateware.block_params.BlockParams.bits_per_fold` bits."""
        p = self.params
        P, B = p.lanes, p.bits_per_cycle
        if p.weights == "stream":
            # a fold issues only when it can claim its weight word; the word leaves the queue
            # claim latency later (the issue decision drives no payload register) and is
            # delayed to meet its window bits
            m.submodules.w_queue = q = self._w_queue
            wiring.connect(m, wiring.flipped(self.w), q.i)
            m.d.comb += [seq.claimable.eq(q.claimable), q.claim.eq(seq.issue)]
            return delay(m, q.data, t_act - q.latency, "wgt")
        # The weight word is read in the same cycle as the window word and registered once
        # more, so that there is no logic between a block RAM and a register and the long
        # route from the RAMs to the P lanes ends in a register too.
        mems = p.weight_memories()
        rams = []
        for name, width, words in mems:
            m.submodules[name] = ram = BankedRAM(width, len(words), words, writable=False,
                                                 style=p.weight_ram)
            rams.append(ram)
        t_data = t_act - 1                       # the word leaves the memory here
        a_waddr = delay(m, seq.fold.w_addr, t_data - rams[0].latency, "a_waddr")
        for ram in rams:
            m.d.comb += ram.r_addr.eq(a_waddr)
        main = delay(m, rams[0].r_data, 1, "wgt")
        if not p.weight_split:
            return main
        # split weights: lane p's B bits of the main word, then its B/8 bits of tap 8
        s = B // 8
        tap8 = delay(m, rams[1].r_data, 1, "wgt8")
        return Cat(*(Cat(main[q * B:(q + 1) * B], tap8[q * s:(q + 1) * s]) for q in range(P)))
