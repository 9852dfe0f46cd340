"""Network top: image bytes in, class and logits out. Stem, the four stage engines and the
head of one export, joined by streams, images back to back.

::

    i (bytes) -> StemEngine(P0) -> [P0->P1] -> StageEngine 1 (P1, B1) -> [P1->P2] -> ...
              -> StageEngine 4 (P4, B4) -> [P4->Ph] -> HeadEngine(Ph) -> o (one beat per image)

``[Pa->Pb]`` is a :class:`WidthConverter`, present only where two parts use different lanes.
Every part reads the export it was built from (on-chip weights and constants); only the concat
shortcut is implemented (a real 1x1 downsample is refused by the stage engines with one line).
A stage built with ``weights="stream"`` (per stage, default ``"memory"``) takes its weights from
one input stream per block instead, ``w{stage}_{j}`` (``P*B`` bits, the words of
:meth:`~bincount.gateware.block_params.BlockParams.weight_words` once per output pixel): the
memory behind them (e.g. a loadable UltraRAM store) lies outside the network.

Streams: ``i`` as :class:`~bincount.gateware.stem_engine.StemEngine` ``i`` (R, G, B bytes per
pixel, raster order); ``o`` as :class:`~bincount.gateware.head_engine.HeadEngine` ``o``. With
``taps=True`` the output of the stem and of every stage is also visible on
``tap_{part}_payload`` / ``tap_{part}_fire`` (observation only; ``part`` is ``stem``,
``stage1`` .. ``stage4``).

Throughput: the parts work concurrently on successive images, so in steady state one image
leaves every ``max(part cycles per image)`` cycles (:attr:`NetworkTop.ideal_cycles`).
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from ._common import check_int
from .block_params import DEFAULT_BITS_PER_CYCLE, DEFAULT_LANES, block_params, layer_names
from .head_engine import HeadEngine, HeadParams
from .stage_engine import STAGES, StageEngine, stage_layers
from .stem_engine import StemEngine, stem_params
from .width_converter import WidthConverter

__all__ = ["NetworkTop", "default_knobs", "check_knobs", "PARTS"]

PARTS = ("stem", "stage1", "stage2", "stage3", "stage4", "head")


def _per_stage(name, value, default):
    if value is None:
        return list(default)
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * len(STAGES)
    value = list(value)
    if len(value) != len(STAGES):
        raise BincountError(f"{name} needs one value or {len(STAGES)} (one per stage), got "
                            f"{len(value)}")
    return value


def _stage_cins(export, stage):
    from bincount.model.export.network_file import export_meta

    layers = {m["name"]: m for m in export_meta(export)["layers"]}
    return [int(layers[n]["cin"]) for n in stage_layers(export, stage)], \
        [int(layers[n]["cout"]) for n in stage_layers(export, stage)]


def default_knobs(export):
    """Default ``(lanes, bits_per_cycle)`` per stage: the engines' defaults (8, 64), lowered to
    the smallest channel count of the network where that is smaller. The same ``P`` and ``B``
    everywhere keep ReActNet-18's stages balanced (every stride-1 layer has the same work)."""
    cins, couts = [], []
    for s in STAGES:
        cin, cout = _stage_cins(export, s)
        cins += cin
        couts += cout
    p = min(DEFAULT_LANES, min(cins + couts))
    b = min(DEFAULT_BITS_PER_CYCLE, min(cins))
    return [p] * len(STAGES), [b] * len(STAGES)


def check_knobs(export, lanes=None, bits_per_cycle=None, stem_lanes=None, head_lanes=None,
                weights=None):
    """The knobs of :class:`NetworkTop` with their defaults filled in, ``(lanes,
    bits_per_cycle, stem_lanes, head_lanes, weights)`` (lists of 4 for the stages), checked
    against ``export`` by the parts' parameter objects (no component is built):
    :class:`BincountError` with one line for the first one that cannot be built."""
    dl, db = default_knobs(export)
    lanes = _per_stage("lanes", lanes, dl)
    bits = _per_stage("bits_per_cycle", bits_per_cycle, db)
    weights = ["memory"] * len(STAGES) if weights is None else (
        [weights] * len(STAGES) if isinstance(weights, str) else list(weights))
    if len(weights) != len(STAGES):
        raise BincountError(f"weights needs one value or {len(STAGES)} (one per stage), "
                            f"got {len(weights)}")
    if not layer_names(export):
        raise BincountError("the export has no binary layers")
    staged = {n for s in STAGES for n in layer_names(export) if n.startswith(f"stage{s}.")}
    stray = [n for n in layer_names(export) if n not in staged]
    if stray:
        raise BincountError(f"the export's layer {stray[0]!r} is in none of stages "
                            f"{', '.join(map(str, STAGES))}; the network engine builds "
                            f"layers named stage<s>.<conv>")
    stem_lanes = lanes[0] if stem_lanes is None else stem_lanes
    head_lanes = lanes[-1] if head_lanes is None else head_lanes
    # the stages first, so that an error names the lanes given; the stem and the head take
    # stage 1's and stage 4's lanes by default, which then fit them too
    for s in STAGES:
        for name in stage_layers(export, s):
            block_params(export, name, lanes[s - 1], bits[s - 1], weights[s - 1])
    check_int("stem lanes", stem_lanes, (1, 4096))
    stem_params(export, stem_lanes)
    HeadParams(export, head_lanes)
    for a, b in zip([stem_lanes] + lanes, lanes + [head_lanes]):
        if a != b:
            WidthConverter.check(a, b)
    return lanes, bits, stem_lanes, head_lanes, weights


class NetworkTop(wiring.Component):
    """The whole network of ``export`` as one stream engine (module docstring).

    Parameters
    ----------
    export : dict
        A ``bincount-network`` export.
    lanes, bits_per_cycle : int or list of 4 ints, optional
        ``P`` and ``B`` of every stage (one value for all, or one per stage); default
        :func:`default_knobs`.
    stem_lanes, head_lanes : int, optional
        ``P`` of the stem (default: stage 1's) and of the head's input (default: stage 4's).
    taps : bool
        Expose the stem's and every stage's output stream (observation).
    weights : str or list of 4 str, optional
        ``"memory"`` (default) or ``"stream"`` per stage (module docstring).
    """

    def __init__(self, export, lanes=None, bits_per_cycle=None, stem_lanes=None,
                 head_lanes=None, taps=False, weights=None):
        self.stem, self.stages, self.head = None, [], None
        lanes, bits, stem_lanes, head_lanes, weights = check_knobs(
            export, lanes, bits_per_cycle, stem_lanes, head_lanes, weights)
        self.stem = StemEngine(export, stem_lanes)
        for s in STAGES:
            self.stages.append(StageEngine(export, s, lanes=lanes[s - 1],
                                           bits_per_cycle=bits[s - 1],
                                           weights=weights[s - 1]))
        self.head = HeadEngine(export, head_lanes)
        self.lanes, self.bits_per_cycle, self.weights = lanes, bits, weights
        self.stem_lanes, self.head_lanes = stem_lanes, head_lanes
        self.taps = bool(taps)
        chain = [stem_lanes] + lanes + [head_lanes]
        self.converters = [None if a == b else WidthConverter(a, b)
                           for a, b in zip(chain[:-1], chain[1:])]
        members = {"i": In(stream.Signature(8)),
                   "o": Out(stream.Signature(self.head.result_layout))}
        outs = [self.stem] + self.stages
        if self.taps:
            for name, part in zip(PARTS[:-1], outs):
                members[f"tap_{name}_payload"] = Out(part.o.payload.shape())
                members[f"tap_{name}_fire"] = Out(1)
        for s, st in zip(STAGES, self.stages):
            if st.weights == "stream":
                for j, b in enumerate(st.blocks):
                    members[f"w{s}_{j}"] = In(stream.Signature(b.params.lanes *
                                                               b.params.bits_per_cycle))
        super().__init__(members)
        self.port_doc = {k: v for k, v in self.stem.port_doc.items() if k.startswith("i__")}
        self.port_doc.update({k: v for k, v in self.head.port_doc.items() if k.startswith("o__")})
        if self.taps:
            for name, part in zip(PARTS[:-1], outs):
                self.port_doc[f"tap_{name}_payload"] = f"output beat of the {name} (observation)"
                self.port_doc[f"tap_{name}_fire"] = f"a beat of the {name} passes this cycle"
        for s, st in zip(STAGES, self.stages):
            if st.weights == "stream":
                for k, v in st.port_doc.items():
                    if k.startswith("w") and "__" in k and k.split("__")[0][1:].isdigit():
                        self.port_doc[f"w{s}_{k[1:]}"] = v

    @property
    def weight_streams(self):
        """``[(port name, BlockParams)]`` of every weight stream input, in stage and block
        order (empty when all weights are on chip)."""
        return [(f"w{s}_{j}", b.params) for s, st in zip(STAGES, self.stages)
                if st.weights == "stream" for j, b in enumerate(st.blocks)]

    @property
    def parts(self):
        """``[(name, component)]`` in stream order (converters excluded)."""
        return list(zip(PARTS, [self.stem] + self.stages + [self.head]))

    @property
    def part_cycles(self):
        """``{part: cycles per image}`` in steady state (ideal: every part's busiest unit)."""
        return {name: part.ideal_cycles for name, part in self.parts}

    @property
    def ideal_cycles(self):
        """Cycles per image of the slowest part."""
        return max(self.part_cycles.values())

    def elaborate(self, platform):
        m = Module()
        m.submodules.stem = self.stem
        for s, st in zip(STAGES, self.stages):
            m.submodules[f"stage{s}"] = st
        m.submodules.head = self.head
        wiring.connect(m, wiring.flipped(self.i), self.stem.i)
        outs = [self.stem] + self.stages
        ins = self.stages + [self.head]
        for j, (a, b, conv) in enumerate(zip(outs, ins, self.converters)):
            if conv is None:
                wiring.connect(m, a.o, b.i)
            else:
                m.submodules[f"conv{j}"] = conv
                wiring.connect(m, a.o, conv.i)
                wiring.connect(m, conv.o, b.i)
            if self.taps:
                name = PARTS[j]
                m.d.comb += [getattr(self, f"tap_{name}_payload").eq(a.o.payload),
                             getattr(self, f"tap_{name}_fire").eq(a.o.valid & a.o.ready)]
        wiring.connect(m, self.head.o, wiring.flipped(self.o))
        for s, st in zip(STAGES, self.stages):
            if st.weights == "stream":
                for j in range(len(st.blocks)):
                    wiring.connect(m, wiring.flipped(getattr(self, f"w{s}_{j}")),
                                   getattr(st, f"w{j}"))
        return m
