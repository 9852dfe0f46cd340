"""Baseline scale: the multiply-based post-popcount block (scale and BatchNorm folded).

Computes, for one output channel (``docs/conventions.md``, "Baseline")::

    d = 2 * count - n                                   # binary dot product, -n..n
    y = sat((mul * d + offset) >> shift)                # >> is arithmetic (floor)

``sat`` clamps to ``[-2**(out_bits-1), 2**(out_bits-1) - 1]``. ``mul`` (signed, ``mul_bits``)
and ``offset`` (signed, ``off_bits``) are the per-channel constants M and O; ``shift`` is the
per-layer S, fixed when the hardware is generated. The rounding constant ``2**(S-1)`` is already
inside ``offset`` (the exporter adds it), so the block only shifts.

Pipeline (latency 3, chosen so that Yosys maps the multiply onto one DSP48E1 on xc7 with its
A/B input registers and M product register in use):

1. register ``d``, ``mul`` and ``offset``;
2. register the product ``mul * d`` (``offset`` follows);
3. add ``offset``, shift, saturate and register ``y``.

Implements :class:`~bincount.gateware.post_popcount.PostPopcount`: the constants layout is
``mul`` (bits ``[0, mul_bits)``), then ``offset``.

Throughput: one input per cycle, no backpressure; ``out_valid`` is ``in_valid`` delayed by the
latency. Clock domain ``sync`` (``clk`` / ``rst`` in Verilog; ``rst`` is synchronous, active
high, and clears the valid pipeline only).
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import (MUL_BITS_RANGE, N_RANGE, OFF_BITS_RANGE, OUT_BITS_RANGE, SHIFT_RANGE,
                      check_int, delay, delay_valid)
from .post_popcount import PostPopcount

__all__ = ["BaselineScale"]


class BaselineScale(PostPopcount):
    """``y = sat((mul * (2*count - n) + offset) >> shift)``, pipelined (latency 3).

    Parameters
    ----------
    n : int
        Number of XNOR inputs N (``1..65536``).
    shift : int
        Arithmetic right shift S (``0..40``).
    out_bits : int
        Width of ``y`` (signed, ``2..64``, default 16); the result saturates to it.
    mul_bits : int
        Width of ``mul`` (signed, ``2..48``, default 18: the B port of a DSP48E1).
    off_bits : int
        Width of ``offset`` (signed, ``2..96``, default 32).

    Members
    -------
    count : ``In(ceil_log2(n + 1))``
        Popcount, unsigned, ``0..n``.
    mul : ``In(signed(mul_bits))``
        Per-channel multiplier M.
    offset : ``In(signed(off_bits))``
        Per-channel offset O (rounding constant included).
    in_valid : ``In(1)``
        The inputs are valid in this cycle.
    y : ``Out(signed(out_bits))``
        Result, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``y`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        A parameter is not an integer or out of its range (the message names both).
    """

    def __init__(self, n, shift, out_bits=16, mul_bits=18, off_bits=32):
        self._n = check_int("n", n, N_RANGE)
        self._shift = check_int("shift", shift, SHIFT_RANGE)
        self._out_bits = check_int("out_bits", out_bits, OUT_BITS_RANGE)
        self._mul_bits = check_int("mul_bits", mul_bits, MUL_BITS_RANGE)
        self._off_bits = check_int("off_bits", off_bits, OFF_BITS_RANGE)
        count_bits = ceil_log2(n + 1)
        super().__init__({
            "count": In(count_bits),
            "mul": In(signed(mul_bits)),
            "offset": In(signed(off_bits)),
            "in_valid": In(1),
            "y": Out(signed(out_bits)),
            "out_valid": Out(1),
        })
        lat = self.latency
        self.port_doc = {
            "count": f"XNOR-popcount, unsigned, 0..{n} ({count_bits} bits); d = 2*count - {n}",
            "mul": f"per-channel multiplier M, signed two's complement, {mul_bits} bits",
            "offset": f"per-channel offset O (rounding constant 2**(S-1) included), signed "
                      f"two's complement, {off_bits} bits",
            "in_valid": "count/mul/offset are valid this cycle (one input per cycle, "
                        "no backpressure)",
            "y": f"sat((M*d + O) >> {shift}) (arithmetic shift, saturated), signed {out_bits} "
                 f"bits, {lat} cycles after the inputs",
            "out_valid": f"y is valid: in_valid delayed by {lat} cycles",
        }

    @property
    def n(self):
        return self._n

    @property
    def shift(self):
        return self._shift

    @property
    def out_bits(self):
        return self._out_bits

    @property
    def mul_bits(self):
        return self._mul_bits

    @property
    def off_bits(self):
        return self._off_bits

    @property
    def latency(self):
        """Cycles from the inputs to ``y`` / ``out_valid``: 3."""
        return 3

    @classmethod
    def constants_layout_for(cls, mul_bits=18, off_bits=32):
        """``mul`` (signed ``mul_bits``), ``offset`` (signed ``off_bits``), from bit 0."""
        return data.StructLayout({"mul": signed(mul_bits), "offset": signed(off_bits)})

    @property
    def constants_layout(self):
        return self.constants_layout_for(self._mul_bits, self._off_bits)

    def elaborate(self, platform):
        m = Module()
        d_bits = len(self.count) + 1  # signed: holds -n..n

        # Stage 1: operand registers (DSP48E1 AREG / BREG).
        d = Signal(signed(d_bits), name="d")
        m.d.comb += d.eq((self.count << 1) - self._n)
        d_r = Signal(signed(d_bits), name="d_r", reset_less=True)
        mul_r = Signal(signed(self._mul_bits), name="mul_r", reset_less=True)
        m.d.sync += [d_r.eq(d), mul_r.eq(self.mul)]
        offset_r = delay(m, self.offset, 2, name="offset")

        # Stage 2: product register (DSP48E1 MREG).
        prod_r = Signal(signed(self._mul_bits + d_bits), name="prod_r", reset_less=True)
        m.d.sync += prod_r.eq(mul_r * d_r)

        # Stage 3: add, arithmetic shift, saturate, register.
        total = Signal(signed(max(len(prod_r), self._off_bits) + 1), name="total")
        m.d.comb += total.eq(prod_r + offset_r)
        shifted = Signal(signed(max(len(total) - self._shift, 1)), name="shifted")
        m.d.comb += shifted.eq(total.shift_right(self._shift))
        y_max = 2 ** (self._out_bits - 1) - 1
        y_min = -2 ** (self._out_bits - 1)
        y_r = Signal.like(self.y, name="y_reg", reset_less=True)
        with m.If(shifted > y_max):
            m.d.sync += y_r.eq(y_max)
        with m.Elif(shifted < y_min):
            m.d.sync += y_r.eq(y_min)
        with m.Else():
            m.d.sync += y_r.eq(shifted)

        valid = delay_valid(m, self.in_valid, self.latency)
        m.d.comb += [self.y.eq(y_r), self.out_valid.eq(valid)]
        return m

