"""Stage engine: the four binary blocks of one ReActNet-18 stage, chained by streams.

``StageEngine(export, stage)`` instantiates one :class:`BinaryBlockEngine` per binary layer of
the stage (``stage{k}.conv1`` .. ``stage{k}.conv4``; the first of stages 2-4 is the stride-2
entry with the concat downsample) and connects block ``j``'s ``o`` to block ``j+1``'s ``i``.
The blocks work concurrently on successive rows (and images), so the stage's throughput is set
by its slowest block, and a block starts as soon as the rows its window needs have arrived.

Streams ``i`` / ``o`` as in :mod:`bincount.gateware.block_engine`: ``i`` carries the stage's
input residual stream (``Cin`` channels at the input map size), ``o`` its output. With
``taps=True`` the stream between block ``j`` and ``j+1`` is also visible on outputs
``tap{j}_payload`` and ``tap{j}_fire`` (a beat passes in this cycle): observation only, used by
the testbenches to compare every layer's output. With ``weights="stream"`` every block ``j``
takes its weights from an input stream ``w{j}`` instead of an on-chip memory (see
:mod:`bincount.gateware.block_engine`): the form for a stage whose weights do not fit on chip.

Latency and cycles: see :attr:`StageEngine.ideal_cycles` and docs/engines.md.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from .block_engine import BinaryBlockEngine
from .block_params import DEFAULT_BITS_PER_CYCLE, DEFAULT_LANES, block_params, layer_names

__all__ = ["StageEngine", "stage_layers", "STAGES"]

STAGES = (1, 2, 3, 4)


def stage_layers(export, stage):
    """Names of the binary layers of ``stage`` (1..4) in ``export``, in order."""
    if stage not in STAGES:
        raise BincountError(f"stage must be one of 1, 2, 3, 4, got {stage!r}")
    names = [n for n in layer_names(export) if n.startswith(f"stage{stage}.")]
    if not names:
        raise BincountError(f"the export has no layers of stage {stage}")
    return names


class StageEngine(wiring.Component):
    """The binary blocks of one stage of ``export`` (module docstring).

    Parameters
    ----------
    export : dict
        A ``bincount-network`` export (``load_export`` / ``export_arrays``).
    stage : int
        1..4.
    lanes, bits_per_cycle : int
        Parallelism of every block (see :mod:`bincount.gateware.block_params`).
    taps : bool
        Also expose the streams between the blocks (observation outputs).
    layers : list of str, optional
        A run of consecutive layers of the stage to build instead of all four (e.g. one block
        alone, to measure its cycles).
    weights : str
        ``"memory"`` (on-chip weight memories) or ``"stream"`` (a weight stream per block).
    post_lanes : int or None
        Post-popcount units per block shared by its lanes (``None``: one per lane;
        :meth:`BlockParams.post_params`).
    weight_ram : str
        The weight memories' style: ``"auto"`` (the synthesis tool's choice), ``"block"``,
        ``"logic"``.
    constant_ram : str
        The per-group constant ROMs' style (RSign biases, conv and RPReLU constants), likewise.
    """

    def __init__(self, export, stage, lanes=DEFAULT_LANES, bits_per_cycle=DEFAULT_BITS_PER_CYCLE,
                 taps=False, layers=None, weights="memory", post_lanes=None,
                 weight_ram="auto", constant_ram="auto"):
        names = stage_layers(export, stage)
        if layers is not None:
            layers = list(layers)
            if not layers or any(n not in names for n in layers):
                raise BincountError(f"layers {layers} are not layers of stage {stage}; "
                                    f"expected some of {', '.join(names)}")
            start = names.index(layers[0])
            if names[start:start + len(layers)] != layers:
                raise BincountError(f"layers {layers} are not consecutive layers of "
                                    f"stage {stage} ({', '.join(names)})")
            names = layers
        self.stage = stage
        self.whole_stage = len(names) == len(stage_layers(export, stage))
        self.blocks = [BinaryBlockEngine(block_params(export, n, lanes, bits_per_cycle,
                                                      weights, post_lanes, weight_ram,
                                                      constant_ram=constant_ram))
                       for n in names]
        self.weights = weights
        self.taps = bool(taps)
        first, last = self.blocks[0].params, self.blocks[-1].params
        members = {"i": In(stream.Signature(first.beat_bits)),
                   "o": Out(stream.Signature(last.beat_bits))}
        if self.taps:
            for j, b in enumerate(self.blocks[:-1]):
                members[f"tap{j}_payload"] = Out(b.params.beat_bits)
                members[f"tap{j}_fire"] = Out(1)
        if weights == "stream":
            for j, b in enumerate(self.blocks):
                members[f"w{j}"] = In(stream.Signature(b.params.lanes * b.params.bits_per_cycle))
        super().__init__(members)
        self.port_doc = dict(self.blocks[0].port_doc)
        self.port_doc.update({k: v for k, v in self.blocks[-1].port_doc.items()
                              if k.startswith("o__")})
        if self.taps:
            for j, b in enumerate(self.blocks[:-1]):
                self.port_doc[f"tap{j}_payload"] = f"output beat of {b.params.name} (observation)"
                self.port_doc[f"tap{j}_fire"] = f"a beat of {b.params.name} passes this cycle"
        if weights == "stream":
            for j, b in enumerate(self.blocks):
                for k, v in b.port_doc.items():
                    if k.startswith("w__"):
                        self.port_doc[f"w{j}__{k[3:]}"] = f"{b.params.name}: {v}"

    @property
    def params(self):
        return [b.params for b in self.blocks]

    @property
    def ideal_cycles(self):
        """Cycles per image of the slowest block: ``max Ho*Wo*(Cout/P)*F``."""
        return max(p.ideal_cycles for p in self.params)

    def elaborate(self, platform):
        m = Module()
        for j, b in enumerate(self.blocks):
            m.submodules[f"block{j}"] = b
        wiring.connect(m, wiring.flipped(self.i), self.blocks[0].i)
        for j in range(len(self.blocks) - 1):
            a, b = self.blocks[j], self.blocks[j + 1]
            wiring.connect(m, a.o, b.i)
            if self.taps:
                m.d.comb += [getattr(self, f"tap{j}_payload").eq(a.o.payload),
                             getattr(self, f"tap{j}_fire").eq(a.o.valid & a.o.ready)]
        wiring.connect(m, self.blocks[-1].o, wiring.flipped(self.o))
        if self.weights == "stream":
            for j, b in enumerate(self.blocks):
                wiring.connect(m, wiring.flipped(getattr(self, f"w{j}")), b.w)
        return m
