"""The parallelism knobs of a stage engine, checked in one place.

:class:`EngineKnobs` holds ``lanes`` (P, output channels per cycle), ``bits_per_cycle`` (B,
window bits per lane and cycle: one for every stage, or a tuple of four, stages 1-4,
:meth:`EngineKnobs.for_stage`), ``weights`` (``"memory"``: on-chip weight memories;
``"stream"``: a weight stream input per block) and ``post_lanes`` (``None``: a post-popcount
unit per lane; Q: Q units per block shared by the P lanes, P/Q cycles per channel group) and
``weight_ram`` (the weight memories' style: the synthesis tool's choice, block RAM or logic)
and ``constant_ram`` (the same for the per-group constant ROMs). Making one checks the types and the weight
source; :meth:`EngineKnobs.validate` checks the knobs against the layers of exports (every
layer's :func:`~bincount.gateware.block_params.block_params`) and, where no export is at hand,
against a bound (``limit``: the smallest Cin of the network). Error messages name the
command-line options the values came from (``options``).

The defaults are the gateware's (:data:`DEFAULT_LANES`, :data:`DEFAULT_BITS_PER_CYCLE`).
"""

import dataclasses
import operator
from dataclasses import dataclass, field

from bincount.errors import BincountError
from bincount.gateware.banked_ram import RAM_STYLES
from bincount.gateware.block_params import (DEFAULT_BITS_PER_CYCLE, DEFAULT_LANES,
                                            WEIGHT_SOURCES, block_params, layer_names)

__all__ = ["EngineKnobs", "DEFAULT_LANES", "DEFAULT_BITS_PER_CYCLE", "WEIGHT_SOURCES",
           "REPORT_KNOBS", "report_knobs"]

_FIELD_OPTIONS = {"lanes": "lanes", "bits_per_cycle": "bits_per_cycle", "weights": "weights",
                  "post_lanes": "post_lanes", "weight_ram": "weight_ram",
                  "constant_ram": "constant_ram"}


@dataclass(frozen=True)
class EngineKnobs:
    """Stage-engine knobs; ``None`` for a knob means its default."""

    lanes: int = DEFAULT_LANES
    #: one B for every stage, or a tuple of four (stages 1-4)
    bits_per_cycle: object = DEFAULT_BITS_PER_CYCLE
    weights: str = "memory"
    #: post-popcount units per block shared by the lanes (None: one per lane)
    post_lanes: object = None
    #: the weight memories' style: "auto" (the synthesis tool's choice), "block", "logic"
    weight_ram: str = "auto"
    #: the constant ROMs' style (RSign biases, conv and RPReLU constants), likewise
    constant_ram: str = "auto"
    #: knob -> the option name used in error messages (``{"lanes": "--engine-lanes"}``)
    options: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        names = dict(_FIELD_OPTIONS, **self.options)
        for knob, default in (("lanes", DEFAULT_LANES),
                              ("bits_per_cycle", DEFAULT_BITS_PER_CYCLE),
                              ("weights", "memory")):
            if getattr(self, knob) is None:
                object.__setattr__(self, knob, default)
        for knob in ("lanes", "bits_per_cycle"):
            v = getattr(self, knob)
            if knob == "bits_per_cycle" and isinstance(v, (list, tuple)):
                if len(v) != 4:
                    raise BincountError(f"{names[knob]} needs 1 value or 4 (stages 1-4), got "
                                        f"{len(v)}")
                object.__setattr__(self, knob, tuple(_integer(names[knob], x) for x in v))
            else:
                object.__setattr__(self, knob, _integer(names[knob], v))
        if self.post_lanes is not None:
            v = self.post_lanes
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BincountError(f"{names['post_lanes']} must be a positive integer, "
                                    f"got {v!r}")
        for knob in ("weight_ram", "constant_ram"):
            if getattr(self, knob) is None:
                object.__setattr__(self, knob, "auto")
            if getattr(self, knob) not in RAM_STYLES:
                raise BincountError(f"{names[knob]} must be one of {', '.join(RAM_STYLES)}, "
                                    f"got {getattr(self, knob)!r}")
        if self.weights not in WEIGHT_SOURCES:
            raise BincountError(f"{names['weights']} must be memory or stream, "
                                f"got {self.weights!r}")
        object.__setattr__(self, "options", names)

    def stage_bits(self, stage):
        """B of the engine of ``stage`` (1-4)."""
        b = self.bits_per_cycle
        if isinstance(b, tuple):
            if stage not in (1, 2, 3, 4):
                raise BincountError(f"{self.options['bits_per_cycle']}: one value per stage "
                                    f"needs a stage 1-4 to pick from, got {stage!r} (a layer "
                                    f"named stage<s>.<conv>)")
            return b[stage - 1]
        return b

    def for_stage(self, stage):
        """The knobs of the engine of ``stage``: ``bits_per_cycle`` that stage's B."""
        return dataclasses.replace(self, bits_per_cycle=self.stage_bits(stage),
                                   options=self.options)

    def with_weights(self, weights):
        """The same knobs with weight source ``weights``."""
        return dataclasses.replace(self, weights=weights, options=self.options)

    def validate(self, exports=(), layers=None, *, limit=None):
        """Check the knobs against every layer of each export (``layers``: only these
        names; a layer ``stage<s>.*`` with stage ``s``'s B), then, with ``limit``, that lanes
        and bits per cycle are powers of two up to ``limit`` (the smallest Cin they must
        divide; a dict ``{stage: limit}`` for the stages built, each stage's B against its
        own); raise :class:`BincountError`."""
        for export in exports:
            for name in (layer_names(export) if layers is None else layers):
                block_params(export, name, self.lanes, self.stage_bits(_stage_of(name)),
                             self.weights, self.post_lanes, self.weight_ram,
                             constant_ram=self.constant_ram)
        if limit is not None:
            limits = limit if isinstance(limit, dict) else {None: limit}
            low = min(limits.values())
            checks = [("lanes", self.lanes, low, None)]
            if isinstance(self.bits_per_cycle, tuple):
                if None in limits:
                    raise BincountError(f"{self.options['bits_per_cycle']}: one value per "
                                        f"stage is checked against a limit per stage built, "
                                        f"{{stage: smallest Cin}}, not one limit")
                checks += [("bits_per_cycle", self.bits_per_cycle[s - 1], lim, s)
                           for s, lim in sorted(limits.items())]
            else:
                checks.append(("bits_per_cycle", self.bits_per_cycle, low, None))
            for knob, v, lim, stage in checks:
                if v < 1 or v & (v - 1) or v > lim:
                    where = "" if stage is None else f" for stage {stage}"
                    raise BincountError(f"{self.options[knob]} {v}{where}: expected a power of "
                                        f"two up to {lim} (it must divide the Cin of every "
                                        f"layer built, the smallest is {lim})")
        return self


def _integer(option, v):
    try:
        if isinstance(v, bool):
            raise TypeError
        return operator.index(v)
    except TypeError:
        raise BincountError(f"{option} must be an integer, got {v!r}") from None


def _stage_of(name):
    """Stage 1-4 of a binary layer ``stage<s>.<conv>`` (None for another name: its B is the
    one for every stage, or the check names the missing stage)."""
    head = name.split(".", 1)[0]
    return int(head[5:]) if head.startswith("stage") and head[5:].isdigit() else None


#: The fold ``report --engines`` and ``bench/engine_seeds.py`` build where a knob is not given
#: (docs/benchmarks.md measures it): 8 lanes; 64 window bits per lane and cycle at stages 1-3
#: and 128 at stage 4, whose blocks then all split their weights (tap 8 counted beside taps
#: 0..7) and take fewer than half the cycles of B = 64; one post-popcount unit per block
#: shared by the lanes (a lane delivers one count every F cycles, F >= 9 at these B);
#: weights and constants in block RAM.
REPORT_KNOBS = {"lanes": 8, "bits_per_cycle": (64, 64, 64, 128), "post_lanes": 1,
                "weight_ram": "block", "constant_ram": "block"}


def report_knobs(options, **given):
    """:class:`~bincount.hw.knobs.EngineKnobs` of the knobs ``given`` (``None``: not given),
    each knob not given from :data:`REPORT_KNOBS`; ``options`` names them in errors."""
    unknown = sorted(set(given) - set(REPORT_KNOBS))
    if unknown:
        raise TypeError(f"report_knobs: no knob {', '.join(unknown)}; expected some of "
                        f"{', '.join(REPORT_KNOBS)}")
    values = {k: (REPORT_KNOBS[k] if given.get(k) is None else given[k]) for k in REPORT_KNOBS}
    return EngineKnobs(**values, options=options)
