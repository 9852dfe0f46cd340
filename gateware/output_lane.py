# amaranth: UnusedElaboratable=no
"""Output lane: one output element per cycle, XNOR-popcount followed by the post-popcount block.

Two forms (``docs/conventions.md``):

- ``"binarized"`` (binarized counting, no multiplier)::

      count = popcount(~(act ^ wgt));  y = hi if count >= threshold else lo

  :class:`~bincount.gateware.xnor_popcount.XnorPopcount` +
  :class:`~bincount.gateware.threshold_compare.ThresholdCompare`.
- ``"baseline"`` (one multiply, add and shift)::

      d = 2*count - n;  y = sat((mul * d + offset) >> shift)

  :class:`~bincount.gateware.xnor_popcount.XnorPopcount` +
  :class:`~bincount.gateware.baseline_scale.BaselineScale`.

The per-channel constants (``threshold``/``hi``/``lo`` or ``mul``/``offset``) are sampled in the
same cycle as ``act``/``wgt`` and delayed inside the lane to meet their count, so a caller can
present a new output channel (or pixel) every cycle. Bit order of ``act``/``wgt``: bit ``i`` is
element ``i = (ky*k + kx)*Cin + ci`` (tap-major, channel-minor); 1 = +1, 0 = -1.

Latency: ``XnorPopcount(n).latency`` + 1 (binarized) or + 3 (baseline). Throughput: one vector
per cycle, no backpressure; ``out_valid`` is ``in_valid`` delayed by the latency. Clock domain
``sync`` (``clk`` / ``rst`` in Verilog; ``rst`` is synchronous, active high, and clears the
valid pipeline only).

(The first line turns off Amaranth's "created but never used" warning for the two sub-components
made here: they are elaborated with the lane, and an unused lane is reported on its own.)
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from ._common import check_choice, delay
from .baseline_scale import BaselineScale
from .threshold_compare import ThresholdCompare
from .xnor_popcount import XnorPopcount

__all__ = ["OutputLane", "FORMS", "DEFAULT_SHIFT", "DEFAULT_MUL_BITS", "DEFAULT_OFF_BITS"]

#: The two lane forms.
FORMS = ("binarized", "baseline")
#: Baseline defaults used when ``shift`` / ``mul_bits`` / ``off_bits`` are not given.
DEFAULT_SHIFT = 12
DEFAULT_MUL_BITS = 18
DEFAULT_OFF_BITS = 32


class OutputLane(wiring.Component):
    """XNOR-popcount + threshold compare (``"binarized"``) or + multiply/shift (``"baseline"``).

    Parameters
    ----------
    n : int
        Number of XNOR inputs N (``1..65536``).
    form : str
        ``"binarized"`` or ``"baseline"``.
    out_bits : int
        Width of ``y`` (signed, ``2..64``, default 16).
    shift, mul_bits, off_bits : int or None
        Baseline only: arithmetic right shift S (``0..40``, default 12), width of ``mul``
        (``2..48``, default 18) and of ``offset`` (``2..96``, default 32). They must be left as
        ``None`` for the binarized form, which has no use for them.

    Members
    -------
    act, wgt : ``In(n)``
        Activation and weight bits (1 = +1, 0 = -1), same element order.
    in_valid : ``In(1)``
        ``act``/``wgt`` and the constants are valid in this cycle.
    threshold, hi, lo : binarized form only
        As :class:`ThresholdCompare`: ``In(ceil_log2(n + 2))``, ``In(signed(out_bits))`` x 2.
    mul, offset : baseline form only
        As :class:`BaselineScale`: ``In(signed(mul_bits))``, ``In(signed(off_bits))``.
    y : ``Out(signed(out_bits))``
        Lane output, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``y`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        Unknown ``form``, a parameter out of its range, or a baseline-only parameter given for
        the binarized form.
    """

    def __init__(self, n, form, out_bits=16, shift=None, mul_bits=None, off_bits=None):
        self._form = check_choice("form", form, FORMS)
        self._popcount = XnorPopcount(n)
        if form == "binarized":
            extra = {"shift": shift, "mul_bits": mul_bits, "off_bits": off_bits}
            given = [k for k, v in extra.items() if v is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise BincountError(f"{', '.join(given)} {verb} only to form 'baseline', "
                                    f"not to form 'binarized'; leave it out")
            self._post = ThresholdCompare(n, out_bits=out_bits)
            consts = ("threshold", "hi", "lo")
        else:
            self._post = BaselineScale(
                n,
                shift=DEFAULT_SHIFT if shift is None else shift,
                out_bits=out_bits,
                mul_bits=DEFAULT_MUL_BITS if mul_bits is None else mul_bits,
                off_bits=DEFAULT_OFF_BITS if off_bits is None else off_bits)
            consts = ("mul", "offset")
        self._consts = consts
        pop_sig = self._popcount.signature.members
        post_sig = self._post.signature.members
        members = {
            "act": In(pop_sig["act"].shape),
            "wgt": In(pop_sig["wgt"].shape),
            "in_valid": In(1),
        }
        for name in consts:
            members[name] = In(post_sig[name].shape)
        members["y"] = Out(post_sig["y"].shape)
        members["out_valid"] = Out(1)
        super().__init__(members)

        lat = self.latency
        plat = self._popcount.latency
        self.port_doc = {
            "act": self._popcount.port_doc["act"],
            "wgt": self._popcount.port_doc["wgt"],
            "in_valid": f"act/wgt/{'/'.join(consts)} are valid this cycle (one vector per "
                        f"cycle, no backpressure)",
        }
        for name in consts:
            self.port_doc[name] = (self._post.port_doc[name]
                                   + f"; sampled with act/wgt, delayed {plat} cycle(s) inside")
        if form == "binarized":
            formula = "hi if count >= threshold else lo"
        else:
            formula = f"sat((mul*(2*count - {n}) + offset) >> {self._post.shift})"
        self.port_doc["y"] = (f"{formula} with count = popcount(~(act ^ wgt)), signed "
                              f"{out_bits} bits, {lat} cycles after the inputs")
        self.port_doc["out_valid"] = f"y is valid: in_valid delayed by {lat} cycles"

    @property
    def n(self):
        return self._popcount.n

    @property
    def form(self):
        return self._form

    @property
    def out_bits(self):
        return self._post.out_bits

    @property
    def shift(self):
        """Baseline shift S, or ``None`` for the binarized form."""
        return self._post.shift if self._form == "baseline" else None

    @property
    def mul_bits(self):
        return self._post.mul_bits if self._form == "baseline" else None

    @property
    def off_bits(self):
        return self._post.off_bits if self._form == "baseline" else None

    @property
    def latency(self):
        """Popcount latency + post-popcount latency (1 binarized, 3 baseline)."""
        return self._popcount.latency + self._post.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.popcount = pop = self._popcount
        m.submodules.post = post = self._post
        m.d.comb += [
            pop.act.eq(self.act),
            pop.wgt.eq(self.wgt),
            pop.in_valid.eq(self.in_valid),
            post.count.eq(pop.count),
            post.in_valid.eq(pop.out_valid),
            self.y.eq(post.y),
            self.out_valid.eq(post.out_valid),
        ]
        for name in self._consts:
            m.d.comb += getattr(post, name).eq(delay(m, getattr(self, name), pop.latency, name))
        return m
