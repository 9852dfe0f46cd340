"""Threshold compare: the multiplier-free post-popcount block of binarized counting.

Computes, for one output channel (``docs/conventions.md``, "Binarized counting")::

    y = hi if count >= threshold else lo

``count`` is the XNOR-popcount (unsigned, ``0..n``), ``threshold`` the per-channel integer
``T`` (unsigned, ``0..n+1``: ``T = 0`` always selects ``hi``, ``T = n+1`` never does; larger
values that the port can hold behave like ``n+1``). ``hi`` and ``lo`` are signed
two's-complement output constants of ``out_bits`` bits, passed through unchanged. There is no
multiplier, adder or saturation: one unsigned comparison and one select.

Implements :class:`~bincount.gateware.post_popcount.PostPopcount`: the constants layout is
``threshold`` (bits ``[0, ceil_log2(n+2))``), then ``hi``, then ``lo``.

Latency: 1 cycle (the comparison and the select before the register ``y``: no combinational
path from an input to ``y``). The select comes before the register, not after it: registered
constants would make ``hi`` and ``lo`` a third register after a constant ROM's two, and Yosys
packs such chains into SRL16E shift registers on xc7, one LUT per bit (32 for two 16-bit
constants), more than the select's 16 LUTs. Throughput: one input per cycle, no backpressure;
``out_valid`` is ``in_valid`` delayed by the latency. Clock domain ``sync`` (ports ``clk`` and
``rst`` in Verilog; ``rst`` is synchronous, active high, and clears ``out_valid`` only).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import N_RANGE, OUT_BITS_RANGE, check_int
from .post_popcount import PostPopcount

__all__ = ["ThresholdCompare"]


class ThresholdCompare(PostPopcount):
    """``y = hi if count >= threshold else lo``, one cycle after the inputs.

    Parameters
    ----------
    n : int
        Number of XNOR inputs N (``1..65536``); sets the widths of ``count`` and ``threshold``.
    out_bits : int
        Width of ``hi``, ``lo`` and ``y`` (signed, ``2..64``, default 16).

    Members
    -------
    count : ``In(ceil_log2(n + 1))``
        Popcount, unsigned, ``0..n``.
    threshold : ``In(ceil_log2(n + 2))``
        Per-channel threshold T, unsigned, ``0..n+1``.
    hi, lo : ``In(signed(out_bits))``
        Output for ``count >= threshold`` and for ``count < threshold``.
    in_valid : ``In(1)``
        The inputs are valid in this cycle.
    y : ``Out(signed(out_bits))``
        Selected constant, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``y`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        A parameter is not an integer or out of its range (the message names both).
    """

    def __init__(self, n, out_bits=16):
        self._n = check_int("n", n, N_RANGE)
        self._out_bits = check_int("out_bits", out_bits, OUT_BITS_RANGE)
        count_bits = ceil_log2(n + 1)
        threshold_bits = ceil_log2(n + 2)
        super().__init__({
            "count": In(count_bits),
            "threshold": In(threshold_bits),
            "hi": In(signed(out_bits)),
            "lo": In(signed(out_bits)),
            "in_valid": In(1),
            "y": Out(signed(out_bits)),
            "out_valid": Out(1),
        })
        self.port_doc = {
            "count": f"XNOR-popcount, unsigned, 0..{n} ({count_bits} bits)",
            "threshold": f"per-channel threshold T, unsigned, 0..{n + 1}: count >= T selects hi "
                         f"(T = 0 always, T = {n + 1} never; larger values behave like {n + 1})",
            "hi": f"output when count >= threshold, signed two's complement, {out_bits} bits",
            "lo": f"output when count < threshold, signed two's complement, {out_bits} bits",
            "in_valid": "count/threshold/hi/lo are valid this cycle (one input per cycle, "
                        "no backpressure)",
            "y": f"hi if count >= threshold else lo, signed {out_bits} bits, "
                 f"{self.latency} cycle(s) after the inputs",
            "out_valid": f"y is valid: in_valid delayed by {self.latency} cycle(s)",
        }

    @property
    def n(self):
        return self._n

    @property
    def out_bits(self):
        return self._out_bits

    @property
    def latency(self):
        """Cycles from the inputs to ``y`` / ``out_valid``: 1."""
        return 1

    @classmethod
    def constants_layout_for(cls, n, out_bits=16):
        """``threshold`` (unsigned, ``ceil_log2(n + 2)`` bits), ``hi``, ``lo`` (signed
        ``out_bits``), in this order from bit 0."""
        return data.StructLayout({"threshold": unsigned(ceil_log2(n + 2)),
                                  "hi": signed(out_bits), "lo": signed(out_bits)})

    @property
    def constants_layout(self):
        return self.constants_layout_for(self._n, self._out_bits)

    def elaborate(self, platform):
        m = Module()
        # the select before the register (module docstring: registered constants would
        # become shift-register LUTs after a constant ROM)
        y = Signal.like(self.y, name="y_reg", reset_less=True)
        valid = Signal(name="valid_reg")
        m.d.sync += [y.eq(Mux(self.count >= self.threshold, self.hi, self.lo)),
                     valid.eq(self.in_valid)]
        m.d.comb += [self.y.eq(y), self.out_valid.eq(valid)]
        return m
