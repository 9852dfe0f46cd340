"""RPReLU unit: the activation at the end of a ReActNet block, for a group of channels.

Computes, for each of ``channels`` channels c (``docs/conventions.md``, "One binary block")::

    t = sat(s + b0)                                   # s: the block's sum, b0 = bias0_c
    u = t                                             if t >= 0
      = (t * slope + 2**(slope_frac-1)) >> slope_frac  "multiply" form (trained slope)
      = sgn * ((t + 2**(-e-1)) >> -e)                 "shift" form, e < 0  (pow2 slope
      = sgn * (t << e)                                "shift" form, e >= 0  sgn * 2**e)
    y = sat(u + b1)                                   # b1 = bias1_c

``>>`` is arithmetic (floor), so the shift form is ``t * 2**e`` rounded half up; ``sgn`` is
``-1`` when the channel's ``neg`` bit is set, else ``+1``. ``sat`` clamps to the signed
``res_bits`` range. ``s``, ``b0``, ``b1`` are signed ``res_bits``-bit integers, ``slope`` a
signed ``slope_bits``-bit integer with ``slope_frac`` fractional bits (the rounding constant
is 0 when ``slope_frac`` is 0), ``e`` a signed 5-bit exponent in ``-15..3``. Every
intermediate is wide enough that nothing wraps before the final saturation.

The shift form has no multiplier: one logarithmic shifter over the exponent and one adder.
The multiply form has one ``res_bits`` x ``slope_bits`` signed multiply per channel (one DSP
each). In both forms the rounding, the negation or the select, and ``+ b1`` share one adder::

    shift:    t * 2**e = (t << 3) >> (3 - e);  with w = floor(t * 2**e), r its rounding bit,
              -(w + r) = ~w + (1 - r), so u + b1 = (~w or w) + b1 + carry-in
    multiply: u + b1 = (p + (b1 << slope_frac) + 2**(slope_frac-1)) >> slope_frac with
              p = t * slope (t < 0) or t << slope_frac (t >= 0)

Exponents outside ``-15..3`` (the exporter writes none): ``-16`` is exact (``t * 2**-16``
rounded half up), ``4..15`` behave like ``3``.

A unit built for the exponents one layer uses (``exponents=(lo, hi)``, the least and greatest
of its channels' ``e``; ``negative_slopes=False`` when no channel has ``neg`` set) shifts by
``hi - e`` in ``0 .. hi - lo`` only: ``t * 2**e = floor(t * 2**(hi+1)) >> (hi - e + 1)``, a
shifter of ``ceil(log2(hi - lo + 1))`` multiplexer levels instead of 5, ``res_bits + max(hi+1,
0)`` bits wide, and without the negation. Its result for an exponent outside ``lo..hi`` or a
set ``neg`` bit is not defined. (A trained layer's slopes span 2-4 exponents, e.g.
``-4..-1``: two levels of 2:1 multiplexers.)

Pipeline (latency 4, both forms), in its general arrangement:

1. ``t = sat(s + b0)``; register ``t`` (and the shift amount, ``3 - e`` or ``hi - e``, or
   ``slope``);
2. shift form: register ``t * 2**e`` before rounding (the shifter); multiply form: register
   the product ``t * slope`` (the multiply sits between registers);
3. round, negate (shift form), select ``t`` for ``t >= 0``, add ``b1``: register the sum;
4. saturate, register ``y``.

The shift form moves the shifter's levels out of stage 2 where they share LUTs with logic
that is there anyway (the stages above still hold for the values at stages 3 and 4). Without
negative slopes the last level (k's bit 0) moves into stage 3, where it, the select and the
adder's XOR read six signals per bit: one LUT6. When at most one level is left, it moves into
stage 1 together with the select of ``t`` for ``t >= 0``: a bit of the result reads two sum
bits, the three sign bits the saturation reads and the level's select, one LUT6, so ``t``
itself needs no LUT of its own; stage 2 then only registers. (The level's select is one bit of
``e`` when ``hi`` is odd, as for ``-1``: ``k = hi - e`` then has ``k[1] = ~e[1]`` or ``e[1]``;
for an even ``hi`` it is ``e[0] ^ e[1]``, a seventh signal, and each bit takes two LUTs, as
the separate level would.) For ``-4..-1`` without negative slopes the shifter takes no LUT of
its own (xc7, ``bench/unit_luts.py``: 65 LUT for one
channel against 87 with the levels in stage 2, and 69 plus a DSP48E1 for the multiply form).

(Yosys packs no registers into the ECP5 multiplier, MULT18X18D, so there the multiply form's
clock is bounded by the multiplier's own combinational delay, as for ``BaselineScale``.)

The per-channel constants (``b1``, ``exp``, ``neg``, ``slope``) travel down the pipeline with
the data: the caller presents every input in the same cycle.

Bit order: channel c of a packed port of ``w`` bits per channel occupies bits
``[c*w, (c+1)*w)`` (LSB first, two's complement for signed fields); ``neg`` has one bit per
channel, bit c = channel c. Throughput: one input per cycle, no backpressure; ``out_valid`` is
``in_valid`` delayed by the latency. Clock domain ``sync`` (``clk`` / ``rst`` in Verilog;
``rst`` is synchronous, active high, and clears the valid pipeline only).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from ._common import check_choice, check_int, delay, delay_valid

__all__ = ["RPReLUUnit", "FORMS", "CHANNELS_RANGE", "RES_BITS_RANGE", "SLOPE_BITS_RANGE",
           "EXP_BITS", "EXP_RANGE"]

#: The two slope forms: power-of-two slopes (shifts) and trained slopes (multiplies).
FORMS = ("shift", "multiply")

#: Valid ranges (inclusive) of the parameters.
CHANNELS_RANGE = (1, 1024)
RES_BITS_RANGE = (2, 32)
SLOPE_BITS_RANGE = (2, 32)

#: Width of one channel's exponent field (signed) and the exponents the exporter writes.
EXP_BITS = 5
EXP_RANGE = (-15, 3)


def _saturating_add(m, a, b, name):
    """``sat(a + b)`` of two signed values of the same width, in that width; returns a
    combinational signal. The sum wraps exactly when both addends have the same sign and the
    wrapped sum the other one; the extreme then takes the sign of ``a`` (one LUT per bit after
    the carry chain)."""
    bits = len(a)
    wrapped = Signal(signed(bits), name=f"{name}_wrapped")
    m.d.comb += wrapped.eq(a + b)
    overflow = (a[-1] == b[-1]) & (wrapped[-1] != a[-1])
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(overflow, Cat((~a[-1]).replicate(bits - 1), a[-1]), wrapped))
    return out


def _saturate(m, value, bits, name):
    """``value`` (signed, wider than ``bits``) clamped to the signed ``bits`` range; returns a
    combinational signal. ``value`` fits exactly when its bits from ``bits - 1`` up are all
    equal (a sign extension); otherwise it is clamped to the extreme of its sign. (Two
    AND/OR reductions of the top bits, a few LUTs deep, instead of two comparators.)"""
    top = value[bits - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    sign = value[-1]
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(fits, value[:bits], Cat((~sign).replicate(bits - 1), sign)))
    return out


class RPReLUUnit(wiring.Component):
    """``y = sat(RPReLU(sat(s + b0)) + b1)`` for a group of channels, pipelined.

    Parameters
    ----------
    channels : int
        Number of channels handled in parallel (``1..1024``).
    form : str
        ``"shift"`` (power-of-two slopes ``+-2**e``, no multiplier) or ``"multiply"``
        (trained fixed-point slopes, one multiply per channel).
    res_bits : int
        Width of each channel of ``s``, ``b0``, ``b1`` and ``y`` (signed, ``2..32``,
        default 16).
    slope_bits : int
        Width of each channel of ``slope`` (signed, ``2..32``, default 16; "multiply" form).
    slope_frac : int
        Fractional bits of ``slope`` (``0..slope_bits-1``, default 12; "multiply" form).
    exponents : tuple or None
        "shift" form: ``(lo, hi)``, the only exponents the inputs will carry
        (``-15 <= lo <= hi <= 3``); ``None`` (default): every 5-bit exponent, as above.
    negative_slopes : bool
        "shift" form: ``False`` when no input has its ``neg`` bit set (default ``True``).

    Members
    -------
    s, b0, b1 : ``In(channels * res_bits)``
        Input, bias before and bias after the activation; channel c in bits
        ``[c*res_bits, (c+1)*res_bits)``, signed.
    exp : ``In(channels * 5)``
        "shift" form only: per-channel slope exponent e, signed 5 bits, ``-15..3``.
    neg : ``In(channels)``
        "shift" form only: bit c set = channel c's slope is ``-2**e``, clear = ``+2**e``.
    slope : ``In(channels * slope_bits)``
        "multiply" form only: per-channel slope, signed, ``slope_frac`` fractional bits.
    in_valid : ``In(1)``
        The inputs are valid in this cycle.
    y : ``Out(channels * res_bits)``
        Results, packed like ``s``, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``y`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        A parameter is not an integer or out of its range, or ``form`` is not one of
        :data:`FORMS` (the message names the parameter and the bad value).
    """

    def __init__(self, channels, form, res_bits=16, slope_bits=16, slope_frac=12,
                 exponents=None, negative_slopes=True):
        self._channels = check_int("channels", channels, CHANNELS_RANGE)
        self._form = check_choice("form", form, FORMS)
        self._res_bits = check_int("res_bits", res_bits, RES_BITS_RANGE)
        self._slope_bits = check_int("slope_bits", slope_bits, SLOPE_BITS_RANGE)
        self._slope_frac = check_int("slope_frac", slope_frac, (0, slope_bits - 1))
        if exponents is not None:
            if not isinstance(exponents, (tuple, list)) or len(exponents) != 2:
                raise BincountError(f"exponents must be a pair (lo, hi), got {exponents!r}")
            lo = check_int("exponents[0]", exponents[0], EXP_RANGE)
            hi = check_int("exponents[1]", exponents[1], (lo, EXP_RANGE[1]))
            exponents = (lo, hi)
        if not isinstance(negative_slopes, bool):
            raise BincountError(f"negative_slopes must be True or False, got {negative_slopes!r}")
        self._exponents = exponents
        self._negative_slopes = negative_slopes
        width = channels * res_bits
        members = {"s": In(width), "b0": In(width), "b1": In(width)}
        if form == "shift":
            members.update({"exp": In(channels * EXP_BITS), "neg": In(channels)})
        else:
            members["slope"] = In(channels * slope_bits)
        members.update({"in_valid": In(1), "y": Out(width), "out_valid": Out(1)})
        super().__init__(members)

        lat = self.latency
        packed = f"signed two's complement, {res_bits} bits each; channel c in bits " \
                 f"[c*{res_bits}, (c+1)*{res_bits})"
        self.port_doc = {
            "s": f"{channels} input value(s) (the block's sum), {packed}",
            "b0": f"{channels} per-channel RPReLU bias0 (added before the activation), {packed}",
            "b1": f"{channels} per-channel RPReLU bias1 (added after the activation), {packed}",
        }
        if form == "shift":
            self.port_doc.update({
                "exp": f"{channels} per-channel slope exponent(s) e, signed two's complement, "
                       f"{EXP_BITS} bits each (-15..3; -16 exact, 4..15 act as 3); channel c "
                       f"in bits [c*{EXP_BITS}, (c+1)*{EXP_BITS})",
                "neg": f"{channels} per-channel slope sign bit(s): bit c set = slope -2**e, "
                       f"clear = +2**e",
            })
            inputs = "s/b0/b1/exp/neg"
            branch = "sgn*round_half_up(t*2**e)"
        else:
            rnd = f"2**{slope_frac - 1}" if slope_frac else "0"
            self.port_doc["slope"] = (
                f"{channels} per-channel slope(s), signed two's complement, {slope_bits} bits "
                f"each, {slope_frac} fractional bits; channel c in bits "
                f"[c*{slope_bits}, (c+1)*{slope_bits})")
            inputs = "s/b0/b1/slope"
            branch = f"(t*slope + {rnd}) >> {slope_frac}"
        self.port_doc.update({
            "in_valid": f"{inputs} are valid this cycle (one input per cycle, no backpressure)",
            "y": f"sat(u + b1) with t = sat(s + b0), u = t if t >= 0 else {branch} "
                 f"(saturated to signed {res_bits} bits), packed like s, "
                 f"{lat} cycles after the inputs",
            "out_valid": f"y is valid: in_valid delayed by {lat} cycles",
        })

    @property
    def channels(self):
        return self._channels

    @property
    def form(self):
        return self._form

    @property
    def res_bits(self):
        return self._res_bits

    @property
    def slope_bits(self):
        return self._slope_bits

    @property
    def slope_frac(self):
        return self._slope_frac

    @property
    def exponents(self):
        """``(lo, hi)`` the shifter is built for, or ``None`` (every exponent)."""
        return self._exponents

    @property
    def negative_slopes(self):
        return self._negative_slopes

    @property
    def latency(self):
        """Cycles from the inputs to ``y`` / ``out_valid``: 4 (both forms)."""
        return 4

    @classmethod
    def constants_layout_for(cls, form, res_bits=16, slope_bits=16):
        """One channel's constants as stored in a per-group constant word, from bit 0:
        ``b0``, ``b1`` (signed ``res_bits``), then ``exp`` (signed 5 bits) and ``neg`` (1 bit)
        for the shift form, or ``slope`` (signed ``slope_bits``) for the multiply form."""
        fields = {"b0": signed(res_bits), "b1": signed(res_bits)}
        if form == "shift":
            fields.update({"exp": signed(EXP_BITS), "neg": unsigned(1)})
        else:
            fields["slope"] = signed(slope_bits)
        return data.StructLayout(fields)

    @property
    def constants_layout(self):
        """:meth:`constants_layout_for` of this unit's form and widths."""
        return self.constants_layout_for(self._form, self._res_bits, self._slope_bits)

    def elaborate(self, platform):
        m = Module()
        rb = self._res_bits
        shift = self._form == "shift"
        b1 = delay(m, self.b1, 2, name="b1")
        if shift:
            neg = delay(m, self.neg, 2, name="neg")
        else:
            slope = delay(m, self.slope, 1, name="slope")

        ys = []
        for c in range(self._channels):
            # Stage 1: t = sat(s + b0).
            s = self.s[c * rb:(c + 1) * rb].as_signed()
            b0 = self.b0[c * rb:(c + 1) * rb].as_signed()
            t = _saturating_add(m, s, b0, name=f"t{c}")

            # Stages 1-3: the negative branch, the select and + b1.
            b1_c = b1[c * rb:(c + 1) * rb].as_signed()
            if shift:
                total_r = self._shift_stages(m, c, t, neg[c], b1_c)
            else:
                t_r = Signal(signed(rb), name=f"t{c}_r", reset_less=True)
                m.d.sync += t_r.eq(t)
                total_r = self._multiply_stages(m, c, t_r, slope, b1_c)

            # Stage 4: y = sat(total).
            y = _saturate(m, total_r, rb, name=f"y{c}")
            y_r = Signal(signed(rb), name=f"y{c}_r", reset_less=True)
            m.d.sync += y_r.eq(y)
            ys.append(y_r)

        valid = delay_valid(m, self.in_valid, self.latency)
        m.d.comb += [self.y.eq(Cat(*ys)), self.out_valid.eq(valid)]
        return m

    def _shift_stages(self, m, c, t, neg, b1):
        """Stages 1-3 of the shift form from stage 1's ``t = sat(s + b0)`` (combinational):
        returns the stage-3 register ``u + b1``."""
        rb = self._res_bits
        e = self.exp[c * EXP_BITS:(c + 1) * EXP_BITS].as_signed()
        if self._exponents is None:
            # the shift amount k = 3 - e (0..19): t * 2**e = (t << 3) >> k
            hi = EXP_RANGE[1]
            k = Signal(range(hi + 2 ** (EXP_BITS - 1) + 1), name=f"k{c}")
            m.d.comb += k.eq(Mux(e > hi, 0, hi - e))
        else:
            # k = hi - e (0..hi-lo); only the low bits of e matter
            lo, hi = self._exponents
            k = Signal(range(hi - lo + 1), name=f"k{c}")
            m.d.comb += k.eq(hi - e)

        # x = floor(t * 2**(hi+1)); sh = x >> k holds w = floor(t * 2**e) in sh[1:] and the
        # rounding bit r (bit -e-1 of t; 0 for e >= 0, where the low bits of x are zero) in
        # sh[0]. The steps of k's bits are taken largest first, where they share LUTs:
        # - without negative slopes, k[0]'s step is taken in stage 3, where an operand bit then
        #   reads t's sign, k[0], two bits of a, t's bit and b1's bit: one LUT6 with the
        #   adder's XOR;
        # - the other steps build a = x >> (their part of k). With one such step, a is built in
        #   stage 1 from the saturation's own signals (with hi = -1, x = t, a bit of a reads two
        #   sum bits, the three sign bits the saturation reads and k[1]: one LUT6) and stage 2
        #   only registers it; with more, the saturation has its own LUTs anyway and a is built
        #   in stage 2 from the registered t and k (a logarithmic shifter, smaller on ECP5 than
        #   Yosys's own).
        late = 1 if len(k) and not self._negative_slopes else 0
        early = len(k) - late <= 1
        if not early:
            t_r, k = delay(m, t, 1, name=f"t{c}"), delay(m, k, 1, name=f"k{c}")
        src = t if early else t_r
        base = hi + 1
        x = Signal(signed(max(rb + base, rb, 2)), name=f"x{c}")
        m.d.comb += x.eq(src.shift_left(base) if base >= 0 else src.shift_right(-base))
        for i in reversed(range(late, len(k))):
            step = Signal.like(x, name=f"x{c}_{i}")
            m.d.comb += step.eq(Mux(k[i], x.shift_right(1 << i), x))
            x = step
        if early:
            # a = t for t >= 0 in the same LUT, so that t needs no register of its own
            a = Signal.like(x, name=f"a{c}")
            m.d.comb += a.eq(Mux(t[-1], x, t))
            a_r = delay(m, a, 2, name=f"a{c}")
            t_d = a_r                     # t for t >= 0; for t < 0 x keeps t's sign (floor)
        else:
            a_r, t_d = delay(m, x, 1, name=f"a{c}"), delay(m, t_r, 1, name=f"t{c}_d")
        t_neg = t_d[-1]

        # Stage 3: u + b1 in one adder. t < 0: u = sgn * (w + r), and -(w + r) = ~w + (1 - r),
        # so u + b1 = operand + b1 + carry with operand = ~w or w and carry = r ^ neg; t >= 0:
        # operand = t, carry = 0. The carry enters as an extra low bit of both addends. The sum
        # is written as b1 - ~operand: (2*b1 + c) - (2*~operand + 1 - c) = 2*(b1 + operand + c)
        # + 1, so that b1 is the carry chain's first operand (its DI pins) and the operand's
        # logic shares the LUT of the chain's XOR (Yosys may swap the addends of a sum).
        sh = Signal.like(a_r, name=f"sh{c}")
        if late:
            k0_r = delay(m, k[0], 2 if early else 1, name=f"k{c}_0")
            m.d.comb += sh.eq(Mux(k0_r, a_r.shift_right(1), a_r))
        else:
            m.d.comb += sh.eq(a_r)
        w = sh[1:].as_signed()
        ob = max(len(w), rb)
        operand = Signal(signed(ob), name=f"operand{c}")
        carry = Signal(name=f"carry{c}")
        if self._negative_slopes:
            m.d.comb += [operand.eq(Mux(t_neg, Mux(neg, ~w, w), t_d)),
                         carry.eq(t_neg & (sh[0] ^ neg))]
        else:
            m.d.comb += [operand.eq(Mux(t_neg, w, t_d)), carry.eq(t_neg & sh[0])]
        wide = Signal(signed(ob + 2), name=f"wide{c}")
        m.d.comb += wide.eq(Cat(carry, b1).as_signed() - Cat(~carry, ~operand).as_signed())
        total_r = Signal(signed(ob + 1), name=f"total{c}_r", reset_less=True)
        m.d.sync += total_r.eq(wide[1:])
        return total_r

    def _multiply_stages(self, m, c, t_r, slope, b1):
        """Stages 2-3 of the multiply form: returns the stage-3 register ``u + b1``."""
        rb, sb, sf = self._res_bits, self._slope_bits, self._slope_frac
        slope_r = slope[c * sb:(c + 1) * sb].as_signed()

        # Stage 2: the product register.
        prod_r = Signal(signed(rb + sb), name=f"prod{c}_r", reset_less=True)
        t_d = Signal(signed(rb), name=f"t{c}_d", reset_less=True)
        m.d.sync += [prod_r.eq(t_r * slope_r), t_d.eq(t_r)]

        # Stage 3: u + b1 in one adder: (p + 2**(sf-1)) >> sf + b1 = (p + (b1 << sf | 2**(sf-1)))
        # >> sf with p = t * slope for t < 0 and p = t << sf (the rounding constant is dropped
        # by the floor) for t >= 0.
        operand = Signal(signed(rb + sb), name=f"operand{c}")
        m.d.comb += operand.eq(Mux(t_d[-1], prod_r, t_d.shift_left(sf)))
        addend = Cat(Const(1 << (sf - 1) if sf else 0, sf), b1).as_signed()
        wide = Signal(signed(rb + sb + 1), name=f"wide{c}")
        m.d.comb += wide.eq(operand + addend)
        total_r = Signal(signed(rb + sb + 1 - sf), name=f"total{c}_r", reset_less=True)
        m.d.sync += total_r.eq(wide[sf:])
        return total_r
