"""Parameters of one binary-block engine: a layer of a ``bincount-network`` export plus the
parallelism knobs, checked once, and the memory images the engine is initialised from.

A block (docs/conventions.md "Whole network") maps the residual stream ``x [Cin, H, W]`` to
``out [Cout, Ho, Wo]``::

    act   = x + rsign_bias >= 0                       (ReActNet; x >= 0 for Bi-Real)
    count = XNOR-popcount of the 3x3 window of act (pad bit outside the map), N = 9*Cin
    conv  = hi if count >= T else lo                  (binarized counting)
          | sat((M*(2*count - N) + O) >> S)           (baseline)
    sc    = x                                         (identity shortcut)
          | (x00 + x01 + x10 + x11 + 2) >> 2, channel c % Cin    (concat downsample, stride 2)
    sum   = sat(conv + sc)
    out   = sat(RPReLU(sum))                          (ReActNet; sum for Bi-Real)

Weights live in an on-chip memory (``weights="memory"``, the default) or arrive on a stream
(``weights="stream"``, for a layer whose weights do not fit on chip): the engine then takes
weight word ``g*F + f`` (the layout below) from its ``w`` stream for every fold it computes, so
the words of :meth:`BlockParams.weight_words` repeat once per output pixel, ``Ho*Wo`` times per
image, at up to ``P*B`` bits per cycle.

Knobs: ``lanes`` output channels computed in parallel (``P``, a power of two dividing ``Cin``
and ``Cout``; it is also the number of channels per stream beat) and ``bits_per_cycle`` (``B``,
a power of two dividing ``Cin``, at most ``Cin``): a lane folds its ``N`` window bits over
``F = N / B`` cycles (``8*Cin/B`` with split weights, which count ``9*B/8`` bits a fold). One
output beat (``P`` channels of one pixel) takes ``F`` cycles, so a layer takes ``Ho * Wo *
(Cout / P) * F`` cycles.

Memory images (word ``w`` of a memory is ``init[w]``, an ``int``; bit order little-endian):

- weights: word ``g*F + f`` holds, for lane ``p`` at bits ``[p*B, (p+1)*B)``, the window bits
  ``f*B .. f*B+B-1`` (tap-major, channel-minor) of output channel ``g*P + p``;
- split weights (:attr:`BlockParams.weight_split`): with ``CB = Cin / B`` the folds of tap 8 are
  fused into the others. A group takes ``F = 8*CB`` folds ``f = tap*CB + cb`` of taps 0..7, and
  fold ``f = 8*j + k`` also counts slice ``k`` of tap 8's channel block ``j``: window bits
  ``(8*CB + j)*B + k*B/8 ..`` (``B/8`` of them), so a lane counts ``9*B/8`` bits per fold
  (:attr:`BlockParams.bits_per_fold`). The main memory holds taps 0..7, word ``g*8*CB + f`` =
  weight word ``g*9*CB + f``, and the tap-8 memory, at the same address, ``P*B/8`` bits: lane
  ``p`` at bits ``[p*B/8, (p+1)*B/8)`` holds that lane's slice ``k`` of tap 8's block ``j``;
- per-group constants (conv, RPReLU) and RSign biases: word ``g`` is an
  ``amaranth.lib.data.ArrayLayout`` of ``P`` lanes, lane ``p`` (channel ``g*P + p``) at bits
  ``[p*w, (p+1)*w)``, each lane a ``StructLayout`` owned by the block that uses it
  (:attr:`BlockParams.conv_layout`, :attr:`~BlockParams.rprelu_layout`,
  :attr:`~BlockParams.rsign_layout`); :func:`pack_words` packs with the same layouts the
  hardware reads them with.
"""

from dataclasses import dataclass, field, replace

import numpy as np
from amaranth.lib import data

from bincount.errors import BincountError
from bincount.model.export.bits import unpack_bits

from .banked_ram import BRAM_MODES, RAM_STYLES, bank_blocks, default_bank_depth
from .baseline_scale import BaselineScale
from .rprelu_unit import EXP_RANGE, RPReLUUnit
from .rsign_compare import RSignCompare
from .threshold_compare import ThresholdCompare

__all__ = ["BlockParams", "block_params", "layer_names", "KERNEL", "DEFAULT_LANES",
           "DEFAULT_BITS_PER_CYCLE", "min_post_lanes",
           "bram_blocks", "BRAM_MODES", "WEIGHT_SOURCES",
           "pack_words", "to_unsigned", "to_beats", "from_beats", "RES_BITS"]

#: Default parallelism: 8 output channels per cycle, 64 window bits per lane and cycle (a stage
#: engine of about 20k LUT4 at stage 1, so that the four stages fit a mid-range FPGA together).
DEFAULT_LANES = 8
DEFAULT_BITS_PER_CYCLE = 64
KERNEL = 3   # the engine computes 3x3 binary convolutions (line buffer of 3 rows)
#: Width of the residual stream (``res`` format of the export, 8 fractional bits).
RES_BITS = 16


def bram_blocks(width, depth, bank_depth=None):
    """18 Kbit block RAMs of a read-only ``BankedRAM`` of ``depth`` words of ``width`` bits in
    banks of ``bank_depth`` words (default: the BankedRAM's,
    :func:`~bincount.gateware.banked_ram.default_bank_depth`), each bank in the cheapest aspect
    ratio that needs no multiplexer inside it (:func:`~bincount.gateware.banked_ram.
    bank_blocks`: a model of the synthesis tool's choice, used to decide the weight memory
    layout)."""
    if bank_depth is None:
        bank_depth = default_bank_depth(width, depth)
    return bank_blocks(width, depth, bank_depth)


def min_post_lanes(lanes, folds):
    """The fewest post-popcount units ``Q`` (a power of two dividing ``lanes``) whose
    ``lanes / Q`` slices of a channel group take fewer cycles than its ``folds``: at least
    one cycle between two groups' slices (the shortcut of a group leaves its queue with its
    last slice, :mod:`~bincount.gateware.block_engine`)."""
    q = 1
    while lanes // q >= folds and q < lanes:
        q *= 2
    return q


def _pow2(v):
    return v > 0 and v & (v - 1) == 0


def to_unsigned(values, bits):
    """Two's-complement ``bits``-bit field values of the integers ``values`` (Python ints)."""
    mask = (1 << bits) - 1
    return [int(v) & mask for v in np.asarray(values).ravel().tolist()]


def pack_words(lane_layout, fields, lanes):
    """Memory words of per-channel fields: ``fields`` maps each field name of ``lane_layout``
    (an ``amaranth.lib.data`` layout) to its values ``[C]``; channel ``c`` goes to word
    ``c // lanes``, lane ``c % lanes`` of ``ArrayLayout(lane_layout, lanes)``. Values are
    truncated to their field (two's complement), as the hardware reads them."""
    layout = data.ArrayLayout(lane_layout, lanes)
    names = [name for name, _ in lane_layout]
    cols = {name: [int(v) for v in np.asarray(fields[name]).ravel().tolist()] for name in names}
    count = len(cols[names[0]])
    return [layout.const([{name: cols[name][g * lanes + q] for name in names}
                          for q in range(lanes)]).as_value().value
            for g in range(count // lanes)]


def layer_names(export):
    """The binary layer names of an export, in network order."""
    return [layer["name"] for layer in _meta(export)["layers"]]


def _meta(export):
    from bincount.model.export.network_file import export_meta
    return export_meta(export)


@dataclass(frozen=True)
class BlockParams:
    """One binary block and its parallelism (see the module docstring)."""

    name: str
    cin: int
    cout: int
    stride: int
    size: int                     # input map H = W
    out_size: int                 # output map Ho = Wo
    pad_bit: int
    form: str                     # "binarized" | "baseline"
    rsign: bool
    downsample: object            # None | "concat"
    rprelu: object                # None | "pow2" | "trained"
    lanes: int
    bits_per_cycle: int
    res_bits: int = RES_BITS
    mul_bits: int = 18
    off_bits: int = 32
    shift: int = 0
    slope_bits: int = 16
    slope_frac: int = 12
    split_weights: object = None  # None: decided by weight_split's block-RAM count; True/False
    weights: str = "memory"       # "memory" (on chip) | "stream" (a weight stream input)
    post_lanes: object = None     # None: P post-popcount lanes; Q < P: shared (post_params)
    weight_ram: str = "auto"      # weight memories: "auto" (the tool's choice), "block", "logic"
    constant_ram: str = "auto"    # constant ROMs (RSign biases, conv, RPReLU), likewise
    arrays: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for knob in ("weight_ram", "constant_ram"):
            if getattr(self, knob) not in RAM_STYLES:
                raise BincountError(f"layer {self.name}: {knob} must be one of "
                                    f"{', '.join(RAM_STYLES)}, got {getattr(self, knob)!r}")
        q = self.post_lanes
        if q is None or q == self.lanes:
            return
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q < self.lanes \
                or self.lanes % q:
            raise BincountError(f"layer {self.name}: post_lanes must divide lanes = "
                                f"{self.lanes} (1..{self.lanes}), got {q!r}")
        if self.lanes // q >= self.folds:
            raise BincountError(f"layer {self.name}: post_lanes = {q} takes lanes / post_lanes "
                                f"= {self.lanes // q} cycles per channel group, not fewer than "
                                f"its F = {self.folds} folds; expected post_lanes >= "
                                f"{min_post_lanes(self.lanes, self.folds)}")

    @property
    def n(self):
        return 9 * self.cin

    @property
    def folds(self):
        """``F``: cycles one lane spends on one output element, ``N / B`` (``8 * Cin/B`` with
        split weights, whose tap 8 is counted beside taps 0..7)."""
        if self.weight_split:
            return 8 * (self.cin // self.bits_per_cycle)
        return self.n // self.bits_per_cycle

    @property
    def bits_per_fold(self):
        """Window bits a lane counts per fold, ``N / F``: ``B``, or ``9*B/8`` with split
        weights."""
        return self.n // self.folds

    @property
    def in_groups(self):
        """Stream beats per input pixel: ``Cin / P``."""
        return self.cin // self.lanes

    @property
    def out_groups(self):
        """Stream beats per output pixel: ``Cout / P``."""
        return self.cout // self.lanes

    @property
    def ideal_cycles(self):
        """``Ho*Wo*(Cout/P)*F``: one fold per cycle, nothing else."""
        return self.out_size ** 2 * self.out_groups * self.folds

    @property
    def beat_bits(self):
        return self.lanes * self.res_bits

    @property
    def shared_post(self):
        """Whether the post-popcount units are shared: ``post_lanes`` units serve the ``P``
        lanes, ``P / post_lanes`` cycles per channel group."""
        return self.post_lanes is not None and self.post_lanes != self.lanes

    @property
    def multipliers(self):
        """Post-popcount multipliers: one per post-popcount lane (``post_lanes``, else ``P``)
        for the baseline's BN scale and one for a trained RPReLU slope; none in the binarized
        form with pow2 slopes (a shift)."""
        return self.post_params().lanes * ((self.form == "baseline") + (self.rprelu == "trained"))

    def post_params(self):
        """The parameters the post-popcount units (conv output, shortcut add, RPReLU) see:
        ``post_lanes`` lanes and ``Cout / post_lanes`` channel groups (so their constant ROMs
        are packed for that many lanes); the block itself when they are not shared."""
        if not self.shared_post:
            return self
        return replace(self, lanes=self.post_lanes, post_lanes=None)

    # -- memory images -----------------------------------------------------------------

    @property
    def weight_split(self):
        """Whether the weights are split into taps 0..7 and a narrow tap-8 memory whose slices
        are counted beside them (module docstring), unless ``split_weights`` says otherwise:
        when ``(Cout/P) * 9*Cin/B`` words would leave most of their last bank of block RAMs
        empty (a factor 9) and the split layout needs fewer block RAMs by
        :func:`bram_blocks`. Needs ``B`` divisible by 8; costs a second read of the window
        buffer (:class:`~bincount.gateware.window_buffer.WindowBuffer`) and ``B/8`` more bits
        in each lane's popcount, and takes 8/9 of the cycles."""
        b = self.bits_per_cycle
        if self.weights == "stream":
            return False
        if self.split_weights is not None:
            if self.split_weights and b % 8:
                raise BincountError(f"layer {self.name}: split weights need bits_per_cycle "
                                    f"divisible by 8, got {b}")
            return bool(self.split_weights)
        if b % 8:
            return False
        w, main = self.lanes * b, self.out_groups * 8 * (self.cin // b)
        whole = bram_blocks(w, self.out_groups * 9 * (self.cin // b))
        return bram_blocks(w, main) + bram_blocks(w // 8, main) < whole

    def weight_memories(self):
        """``[(name, width, words)]`` of the weight memories: the whole image of
        :meth:`weight_words`, or (split) taps 0..7 and the tap-8 memory."""
        words, P, B = self.weight_words(), self.lanes, self.bits_per_cycle
        if not self.weight_split:
            return [("weights", P * B, words)]
        cb, f, s = self.cin // B, 9 * (self.cin // B), B // 8
        main, tail = [], []
        for g in range(self.out_groups):
            main += words[g * f:g * f + 8 * cb]
            for word in words[g * f + 8 * cb:(g + 1) * f]:
                lanes = [(word >> (p * B)) & ((1 << B) - 1) for p in range(P)]
                tail += [sum(((v >> (k * s)) & ((1 << s) - 1)) << (p * s)
                             for p, v in enumerate(lanes)) for k in range(8)]
        return [("weights", P * B, main), ("weights_tap8", P * s, tail)]

    def weight_words(self):
        """Weight words: ``(Cout/P) * 9*Cin/B`` words of ``P*B`` bits (module docstring; the
        memory image unless the weights are split, :meth:`weight_memories`)."""
        bits = unpack_bits(self.arrays["weight_bits"], self.n)          # [Cout, N] 0/1
        p, b, f = self.lanes, self.bits_per_cycle, self.n // self.bits_per_cycle
        grid = bits.reshape(self.out_groups, p, f, b).transpose(0, 2, 1, 3)   # [G, F, P, B]
        flat = np.packbits(grid.reshape(self.out_groups * f, p * b), axis=-1, bitorder="little")
        return [int.from_bytes(row.tobytes(), "little") for row in flat]

    @property
    def conv_layout(self):
        """One lane of a conv constant word: the constants layout of the post-popcount block
        of the form (``threshold, hi, lo`` or ``mul, offset``)."""
        if self.form == "binarized":
            return ThresholdCompare.constants_layout_for(self.n, self.res_bits)
        return BaselineScale.constants_layout_for(self.mul_bits, self.off_bits)

    def conv_words(self):
        """Per-group constants of the conv output, ``Cout/P`` words of lanes of
        :attr:`conv_layout`."""
        a = self.arrays
        names = ("threshold", "hi", "lo") if self.form == "binarized" else ("mul", "offset")
        return pack_words(self.conv_layout, {k: a[k] for k in names}, self.lanes)

    @property
    def rprelu_form(self):
        """:class:`RPReLUUnit` form: ``"shift"`` for pow2 slopes, else ``"multiply"``."""
        return "shift" if self.rprelu == "pow2" else "multiply"

    @property
    def rprelu_layout(self):
        """One lane of an RPReLU constant word: ``b0, b1`` then ``exp, neg`` (pow2) or
        ``slope`` (:meth:`RPReLUUnit.constants_layout_for`)."""
        return RPReLUUnit.constants_layout_for(self.rprelu_form, self.res_bits, self.slope_bits)

    @property
    def rprelu_exponents(self):
        """``(lo, hi)``: the least and greatest pow2 slope exponent of the layer's channels, the
        exponents its shifter is built for (:class:`RPReLUUnit` ``exponents``); ``None`` for
        trained slopes or an exponent outside ``-15..3``."""
        if self.rprelu != "pow2":
            return None
        e = np.asarray(self.arrays["rprelu.slope_exp"])
        lo, hi = int(e.min()), int(e.max())
        return (lo, hi) if EXP_RANGE[0] <= lo and hi <= EXP_RANGE[1] else None

    @property
    def rprelu_negative_slopes(self):
        """Whether a channel's pow2 slope is negative (``slope_neg`` set); ``True`` for
        trained slopes."""
        if self.rprelu != "pow2":
            return True
        return bool(np.any(np.asarray(self.arrays["rprelu.slope_neg"]) != 0))

    def rprelu_words(self):
        """Per-group RPReLU constants, ``Cout/P`` words of lanes of :attr:`rprelu_layout`."""
        a = self.arrays
        fields = {"b0": a["rprelu.bias0"], "b1": a["rprelu.bias1"]}
        if self.rprelu == "pow2":
            fields.update({"exp": a["rprelu.slope_exp"], "neg": a["rprelu.slope_neg"]})
        else:
            fields["slope"] = a["rprelu.slope"]
        return pack_words(self.rprelu_layout, fields, self.lanes)

    @property
    def rsign_layout(self):
        """One lane of an RSign bias word (:meth:`RSignCompare.constants_layout_for`)."""
        return RSignCompare.constants_layout_for(self.res_bits)

    def rsign_words(self):
        """RSign bias memory image: ``Cin/P`` words of lanes of :attr:`rsign_layout`."""
        return pack_words(self.rsign_layout, {"bias": self.arrays["rsign_bias"]}, self.lanes)


def _check_knob(name, value, layer, cin, cout, limit):
    if isinstance(value, bool) or not isinstance(value, int):
        raise BincountError(f"{name} must be a power-of-two integer, got {value!r}")
    if not _pow2(value):
        raise BincountError(f"{name} must be a power of two, got {value}")
    if value > limit:
        raise BincountError(f"{name} = {value} is too large for layer {layer} "
                            f"(Cin = {cin}, Cout = {cout}); expected at most {limit}")


WEIGHT_SOURCES = ("memory", "stream")


def block_params(export, name, lanes=DEFAULT_LANES, bits_per_cycle=DEFAULT_BITS_PER_CYCLE,
                 weights="memory", post_lanes=None, weight_ram="auto", *, constant_ram="auto"):
    """:class:`BlockParams` of binary layer ``name`` of ``export`` (a dict from
    :func:`bincount.model.export.network_file.load_export` or ``export_arrays``), checked;
    ``weights`` is ``"memory"`` or ``"stream"`` (module docstring); ``post_lanes`` (``None``:
    ``lanes``) the post-popcount units shared by the lanes (:meth:`BlockParams.post_params`);
    ``weight_ram`` the weight memories' style (:data:`~bincount.gateware.banked_ram.RAM_STYLES`),
    ``constant_ram`` the constant ROMs' style."""
    if weights not in WEIGHT_SOURCES:
        raise BincountError(f"weights must be 'memory' or 'stream', got {weights!r}")
    meta = _meta(export)
    layers = {layer["name"]: layer for layer in meta["layers"]}
    if name not in layers:
        raise BincountError(f"unknown layer {name!r}; expected one of {', '.join(layers)}")
    m = layers[name]
    cin, cout = int(m["cin"]), int(m["cout"])
    if m["k"] != KERNEL:
        raise BincountError(f"layer {name}: kernel {m['k']}; the engine computes "
                            f"{KERNEL}x{KERNEL} layers")
    if m["stride"] not in (1, 2):
        raise BincountError(f"layer {name}: stride {m['stride']}; expected 1 or 2")
    if m["stride"] == 2 and m["in_size"] % 2:
        raise BincountError(f"layer {name}: stride 2 needs an even map size, got {m['in_size']}")
    if m["downsample"] == "real":
        raise BincountError(f"layer {name}: the real 1x1 downsample shortcut is not implemented "
                            f"in the engine; export with the flag shortcut=concat")
    if m["downsample"] is None and (cin != cout or m["stride"] != 1):
        raise BincountError(f"layer {name}: identity shortcut needs Cin = Cout and stride 1")
    _check_knob("lanes", lanes, name, cin, cout, min(cin, cout))
    _check_knob("bits_per_cycle", bits_per_cycle, name, cin, cout, cin)
    if cin % lanes or cout % lanes or cin % bits_per_cycle:
        raise BincountError(f"layer {name}: lanes = {lanes} must divide Cin = {cin} and "
                            f"Cout = {cout}, bits_per_cycle = {bits_per_cycle} must divide Cin")
    fmt = meta["formats"]
    p = name + "."
    arrays = {k[len(p):]: np.asarray(v) for k, v in export.items() if k.startswith(p)}
    return BlockParams(
        name=name, cin=cin, cout=cout, stride=int(m["stride"]), size=int(m["in_size"]),
        out_size=int(m["out_size"]), pad_bit=int(m["pad_bit"]), form=m["form"],
        rsign=bool(m["rsign"]), downsample=m["downsample"], rprelu=m["rprelu"], lanes=lanes,
        bits_per_cycle=bits_per_cycle, res_bits=int(fmt["res_bits"]),
        mul_bits=int(fmt["mul_bits"]), off_bits=int(fmt["off_bits"]),
        shift=int(m["shift"] or 0), slope_bits=int(fmt["slope_bits"]),
        slope_frac=int(fmt["slope_frac"]), weights=weights, post_lanes=post_lanes,
        weight_ram=weight_ram, constant_ram=constant_ram, arrays=arrays)


def to_beats(x, lanes, bits=RES_BITS):
    """Stream payloads (Python ints) of a map ``x [C, H, W]`` of signed integers: pixels in
    raster order, ``C / lanes`` beats per pixel, channel ``g*lanes + p`` at bits
    ``[p*bits, (p+1)*bits)`` of beat ``g`` (two's complement)."""
    x = np.asarray(x, dtype=np.int64)
    c, h, w = x.shape
    if c % lanes:
        raise BincountError(f"{c} channels do not split into beats of {lanes}")
    u = (x & ((1 << bits) - 1)).astype(object)                     # [C, H, W] unsigned
    g = u.transpose(1, 2, 0).reshape(h * w * (c // lanes), lanes)   # [beats, lanes]
    shifts = [1 << (q * bits) for q in range(lanes)]
    return [int(sum(v * s for v, s in zip(row, shifts))) for row in g]


def from_beats(beats, channels, size, lanes, bits=RES_BITS):
    """Inverse of :func:`to_beats`: ``int64 [channels, size, size]`` (signed values)."""
    if len(beats) != size * size * channels // lanes:
        raise BincountError(f"{len(beats)} beats; a {channels}x{size}x{size} map in beats of "
                            f"{lanes} channels has {size * size * channels // lanes}")
    mask = (1 << bits) - 1
    vals = np.array([[(int(v) >> (q * bits)) & mask for q in range(lanes)] for v in beats],
                    dtype=np.int64)
    vals = np.where(vals >> (bits - 1) == 1, vals - (1 << bits), vals)
    return np.ascontiguousarray(vals.reshape(size, size, channels).transpose(2, 0, 1))
