# amaranth: UnusedElaboratable=no
"""Registry of the blocks that ``bincount generate`` (and the reports) can build.

Each block has a name, a component class from :mod:`bincount.gateware` and a list of
parameters with defaults. :func:`build_block` checks the parameters, builds the component and
derives a deterministic Verilog module name from the resolved parameters, e.g.
``bincount_xnor_popcount_n576`` or ``bincount_output_lane_baseline_n576_out16_sh12_mul18_off32``.

(The first line turns off Amaranth's "created but never used" warning for components built here:
callers may build a block only to read its ports or latency, or may be refused an output
directory before the component is converted.)
"""

from dataclasses import dataclass, field

from bincount.errors import BincountError
from bincount.gateware.baseline_scale import BaselineScale
from bincount.gateware.output_lane import (DEFAULT_MUL_BITS, DEFAULT_OFF_BITS, DEFAULT_SHIFT,
                                           FORMS, OutputLane)
from bincount.gateware.threshold_compare import ThresholdCompare
from bincount.gateware.xnor_popcount import XnorPopcount

__all__ = ["Param", "BlockSpec", "Block", "BLOCKS", "build_block", "module_name"]

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One block parameter: ``name``, ``default`` (absent: required), ``tag`` for module names."""
    name: str
    help: str
    default: object = _REQUIRED
    tag: str = ""          # module-name token prefix; "" means the bare value (used for form)
    kind: type = int

    @property
    def required(self):
        return self.default is _REQUIRED


@dataclass(frozen=True)
class BlockSpec:
    name: str
    factory: object
    params: tuple
    help: str

    def param(self, name):
        for p in self.params:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class Block:
    """A built block: registry ``name``, Verilog ``module`` name, ``component`` and the resolved
    ``parameters`` (every parameter that applies, defaults filled in)."""
    name: str
    module: str
    component: object
    parameters: dict = field(default_factory=dict)


_N = Param("n", "number of XNOR inputs N = k*k*Cin (1..65536)", tag="n")
_OUT = Param("out_bits", "width of the signed output y (2..64)", 16, tag="out")
_SHIFT = Param("shift", "baseline arithmetic right shift S (0..40)", DEFAULT_SHIFT, tag="sh")
_MUL = Param("mul_bits", "baseline multiplier width (2..48)", DEFAULT_MUL_BITS, tag="mul")
_OFF = Param("off_bits", "baseline offset width (2..96)", DEFAULT_OFF_BITS, tag="off")
_FORM = Param("form", f"lane form: {' or '.join(FORMS)}", "binarized", tag="", kind=str)
# For output_lane the baseline-only parameters default to "not given": the lane fills in its own
# defaults for the baseline form and refuses them for the binarized form.
_LANE_SHIFT = Param("shift", _SHIFT.help + "; baseline form only", None, tag="sh")
_LANE_MUL = Param("mul_bits", _MUL.help + "; baseline form only", None, tag="mul")
_LANE_OFF = Param("off_bits", _OFF.help + "; baseline form only", None, tag="off")

BLOCKS = {spec.name: spec for spec in (
    BlockSpec("xnor_popcount", XnorPopcount, (_N,),
              "count = popcount(~(act ^ wgt)) over N bits, pipelined"),
    BlockSpec("threshold_compare", ThresholdCompare, (_N, _OUT),
              "y = hi if count >= threshold else lo (binarized counting, no multiplier)"),
    BlockSpec("baseline_scale", BaselineScale, (_N, _SHIFT, _OUT, _MUL, _OFF),
              "y = sat((mul*(2*count - N) + offset) >> shift) (one DSP multiply)"),
    BlockSpec("output_lane", OutputLane, (_FORM, _N, _OUT, _LANE_SHIFT, _LANE_MUL, _LANE_OFF),
              "XNOR-popcount followed by threshold compare or baseline scale"),
)}


def _spec(name):
    spec = BLOCKS.get(name)
    if spec is None:
        raise BincountError(f"unknown block {name!r}; valid blocks: {', '.join(BLOCKS)}")
    return spec


def _resolved_parameters(spec, component):
    params = {}
    for p in spec.params:
        value = getattr(component, p.name)
        if value is not None:
            params[p.name] = value
    return params


def module_name(name, parameters):
    """Verilog module name of block ``name`` with resolved ``parameters`` (deterministic)."""
    spec = _spec(name)
    tokens = [f"bincount_{name}"]
    for p in spec.params:
        if parameters.get(p.name) is not None:
            tokens.append(f"{p.tag}{parameters[p.name]}")
    return "_".join(tokens)


def build_block(name, **params):
    """Build block ``name`` with ``params`` (``None`` values mean "use the default").

    Returns a :class:`Block`. Raises :class:`BincountError` for an unknown block name (listing
    the valid ones), a parameter the block does not take, a missing required parameter, or a
    value out of range.
    """
    spec = _spec(name)
    kwargs = {}
    for key, value in params.items():
        if value is None:
            continue
        if spec.param(key) is None:
            valid = ", ".join(p.name for p in spec.params)
            raise BincountError(f"block {name!r} takes no parameter {key!r}; "
                                f"its parameters are: {valid}")
        kwargs[key] = value
    for p in spec.params:
        if p.name not in kwargs:
            if p.required:
                raise BincountError(f"block {name!r} needs parameter {p.name!r} ({p.help})")
            if p.default is not None:
                kwargs[p.name] = p.default
    component = spec.factory(**kwargs)
    parameters = _resolved_parameters(spec, component)
    return Block(name=name, module=module_name(name, parameters), component=component,
                 parameters=parameters)
