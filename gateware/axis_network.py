"""AXI4-Stream wrapper of the whole network: 32-bit words in from an AXI DMA (MM2S), 32-bit
result words out to it (S2MM), and, for stages whose weights are streamed, a weight store
(:mod:`bincount.gateware.weight_store`) loaded through a third stream.

Ports (AXI4-Stream names, so that Vivado infers the interfaces; no ``tkeep``: every byte of
every word is valid)::

    s_axis_tdata[31:0], s_axis_tvalid, s_axis_tready, s_axis_tlast        images in
    m_axis_tdata[31:0], m_axis_tvalid, m_axis_tready, m_axis_tlast        results out
    s_axis_w_tdata[31:0], s_axis_w_tvalid, s_axis_w_tready, s_axis_w_tlast weights in (only
                                                                           with a store)
    weights_loaded                                                         store is full

Images (``s_axis``): one frame per image, ``image_bytes / 4`` words (768 for a 32x32x3 image),
``tlast`` on the last word. The bytes are the network's input bytes in order (R, G, B per
pixel, raster order); word ``k`` holds bytes ``4k .. 4k+3`` little-endian: byte ``4k`` in bits
``[7:0]``, byte ``4k+3`` in bits ``[31:24]`` (the order of the image's bytes in memory on a
little-endian processor, so a DMA of the ``uint8`` array needs no shuffling).

- **Short frame** (``tlast`` before the last word): the image is completed with zero bytes
  (the network must always see whole images) and its result carries the ``short`` flag.
- **Long frame** (no ``tlast`` on the last word): the image ends there; the words after it up
  to and including the next ``tlast`` are taken and dropped, and the result carries the
  ``long`` flag.

Either way every frame gives exactly one result and the next frame starts a new image.

Results (``m_axis``): 11 words per image (``1 + classes``), ``tlast`` on the last:

========  ========================================================================
word 0    bits ``[7:0]`` class index; bit 8 short frame; bit 9 long frame;
          bits ``[31:16]`` frame number (count of frames since reset, mod 65536)
word 1+k  logit of class ``k``, two's complement, sign-extended to 32 bits
========  ========================================================================

Weights (``s_axis_w``): the store's load image (:func:`~bincount.gateware.weight_store.
load_image`), 32-bit words; ``tlast`` is not used. Words after the image is complete are taken
and dropped. Until the store is full the streamed stages wait (the images queue).

Structure: a byte serialiser (a 4-byte shift register refilled in the cycle its last byte
leaves, so one byte per cycle), a frame counter and a flag FIFO of :data:`FLAG_DEPTH` entries
(one per image between the input and the output; a new word is taken only while the FIFO has
room), and a result register read out word by word. Latency: 1 cycle from a word on
``s_axis`` to its first byte on the network's input; 1 cycle from a result on the network's
``o`` to word 0 on ``m_axis``. Clock domain ``sync``, ``rst`` synchronous, active high.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ._common import check_int
from .weight_store import WeightStore

__all__ = ["AxisNetwork", "FLAG_DEPTH", "RESULT_FLAGS", "WORD_BITS", "decode_result"]

#: Bits per AXI4-Stream word.
WORD_BITS = 32
#: Images the flag FIFO tracks between input and output.
FLAG_DEPTH = 16
#: Bit of word 0 of a result for each frame error.
RESULT_FLAGS = {"short": 8, "long": 9}


def decode_result(words):
    """``{"class", "logits", "short", "long", "frame"}`` of the 32-bit result words of one
    image (the inverse of the layout in the module docstring)."""
    w0 = int(words[0])
    logits = [int(w) - (1 << 32) if int(w) >> 31 else int(w) for w in words[1:]]
    return {"class": w0 & 0xFF, "logits": logits, "short": bool(w0 >> 8 & 1),
            "long": bool(w0 >> 9 & 1), "frame": w0 >> 16 & 0xFFFF}


class AxisNetwork(wiring.Component):
    """AXI4-Stream wrapper of ``core`` (module docstring).

    Parameters
    ----------
    core : wiring.Component
        The network: ``i`` (8-bit stream), ``o`` (stream of ``result_layout``) and, when
        ``weight_streams`` is given, one input stream per streamed block with those names (a
        :class:`~bincount.gateware.network_top.NetworkTop` or a component of the same ports).
    result_layout : data.StructLayout
        ``prediction`` and ``logits`` (:attr:`HeadEngine.result_layout`).
    image_bytes : int
        Bytes per image (a multiple of 4).
    weight_streams : list of (name, depth, width)
        Streamed blocks of ``core``: the port, its words ``G*F`` and bits per word ``P*B``.
    """

    def __init__(self, core, result_layout, image_bytes=3072, weight_streams=()):
        self.image_bytes = check_int("image bytes", image_bytes, (4, 1 << 24))
        if self.image_bytes % 4:
            raise ValueError(f"image bytes must be a multiple of 4, got {image_bytes}")
        self.result_layout = result_layout
        self.classes = result_layout.members["logits"].length
        self.logit_bits = result_layout.members["logits"].elem_shape.width
        if self.classes + 1 > 255 or self.logit_bits > WORD_BITS:
            raise ValueError("at most 254 classes of at most 32-bit logits")
        self.weight_streams = [(str(n), int(d), int(w)) for n, d, w in weight_streams]
        widths = {w for _, _, w in self.weight_streams}
        if len(widths) > 1:
            raise ValueError(f"streamed blocks of one store need one word width, got "
                             f"{sorted(widths)}")
        self.core = core
        self.store = (WeightStore([d for _, d, _ in self.weight_streams], widths.pop(), WORD_BITS)
                      if self.weight_streams else None)
        members = {"s_axis_tdata": In(WORD_BITS), "s_axis_tvalid": In(1),
                   "s_axis_tready": Out(1), "s_axis_tlast": In(1),
                   "m_axis_tdata": Out(WORD_BITS), "m_axis_tvalid": Out(1),
                   "m_axis_tready": In(1), "m_axis_tlast": Out(1)}
        if self.store is not None:
            members.update({"s_axis_w_tdata": In(WORD_BITS), "s_axis_w_tvalid": In(1),
                            "s_axis_w_tready": Out(1), "s_axis_w_tlast": In(1),
                            "weights_loaded": Out(1)})
        super().__init__(members)

    @property
    def words_per_image(self):
        return self.image_bytes // 4

    @property
    def result_words(self):
        return 1 + self.classes

    @property
    def latency(self):
        """Cycles from a word on ``s_axis`` to its first byte at the network (and from a
        result at the network to word 0 on ``m_axis``): 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.flags = flags = SyncFIFOBuffered(width=2, depth=FLAG_DEPTH)
        wpi = self.words_per_image

        # --- input: frames -> bytes ------------------------------------------------------
        shift = Signal(WORD_BITS, name="byte_shift", reset_less=True)
        left = Signal(range(5), name="bytes_left")
        count = Signal(range(wpi), name="word_count")     # words of this image sent on
        pad = Signal(name="padding")                       # short frame: zero words follow
        drop = Signal(name="dropping")                     # long frame: words dropped
        byte_fire = core.i.valid & core.i.ready
        m.d.comb += [core.i.valid.eq(left != 0), core.i.payload.eq(shift[:8])]
        room = (left == 0) | ((left == 1) & core.i.ready)  # shift register free next cycle
        last_word = count == wpi - 1
        take = Signal(name="take_word")
        m.d.comb += [
            self.s_axis_tready.eq(drop | (room & ~pad & flags.w_rdy)),
            take.eq(self.s_axis_tvalid & self.s_axis_tready & ~drop),
        ]
        push = Signal(name="push_flags")
        short, long_ = Signal(name="short_frame"), Signal(name="long_frame")
        with m.If(byte_fire):
            m.d.sync += [shift.eq(shift >> 8), left.eq(left - 1)]
        with m.If(take | (pad & room)):
            m.d.sync += [shift.eq(Mux(pad, 0, self.s_axis_tdata)), left.eq(4),
                         count.eq(Mux(last_word, 0, count + 1))]
            with m.If(last_word):
                m.d.sync += pad.eq(0)
        with m.If(take):
            with m.If(last_word):
                m.d.comb += [push.eq(1), long_.eq(~self.s_axis_tlast)]
                m.d.sync += drop.eq(~self.s_axis_tlast)
            with m.Elif(self.s_axis_tlast):
                m.d.comb += [push.eq(1), short.eq(1)]
                m.d.sync += pad.eq(1)
        with m.If(drop & self.s_axis_tvalid & self.s_axis_tlast):
            m.d.sync += drop.eq(0)
        m.d.comb += [flags.w_en.eq(push), flags.w_data.eq(Cat(short, long_))]

        # --- output: result -> words -----------------------------------------------------
        result = Signal(self.result_layout, name="result")
        rflags = Signal(2, name="result_flags")
        word = Signal(range(self.result_words + 1), name="result_word")   # 0: empty
        frame = Signal(16, name="frame_number")
        m.d.comb += core.o.ready.eq((word == 0) & flags.r_rdy)
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += [result.eq(core.o.payload), rflags.eq(flags.r_data), word.eq(1)]
        m.d.comb += flags.r_en.eq(core.o.valid & core.o.ready)
        pred = result.prediction
        words = [Cat(pred, Const(0, 8 - len(pred)),
                     rflags, Const(0, 6), frame)]
        for k in range(self.classes):
            v = Signal(signed(WORD_BITS), name=f"logit{k}_word")
            m.d.comb += v.eq(result.logits[k])
            words.append(v)
        with m.Switch(word):
            for k, w in enumerate(words):
                with m.Case(k + 1):
                    m.d.comb += self.m_axis_tdata.eq(w)
        m.d.comb += [self.m_axis_tvalid.eq(word != 0),
                     self.m_axis_tlast.eq(word == self.result_words)]
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += word.eq(Mux(word == self.result_words, 0, word + 1))
            with m.If(word == self.result_words):
                m.d.sync += frame.eq(frame + 1)

        # --- weights ------------------------------------------------------------------------
        if self.store is not None:
            m.submodules.store = store = self.store
            m.d.comb += [store.load.payload.eq(self.s_axis_w_tdata),
                         store.load.valid.eq(self.s_axis_w_tvalid),
                         self.s_axis_w_tready.eq(store.load.ready | store.loaded),
                         self.weights_loaded.eq(store.loaded)]
            for j, (name, _, _) in enumerate(self.weight_streams):
                wiring.connect(m, getattr(store, f"w{j}"), getattr(core, name))
        return m
