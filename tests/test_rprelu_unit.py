"""RPReLUUnit in the Amaranth simulator against the integer reference of the network."""

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from bincount.errors import BincountError
from bincount.gateware.rprelu_unit import RPReLUUnit
from bincount.hw.synth import synthesize
from bincount.model.export.fixed_point import int_range
from bincount.model.export.network_reference import _sat, _shift_round
from pipeline_sim import elaborated, rtl_pipeline, assert_reset_clears_valid


def ref_rprelu(s, b0, b1, *, res_bits, exp=None, neg=None, slope=None, slope_frac=12):
    """The RPReLU of ``NetworkReference`` (``_Binary.run``), elementwise on int64 arrays.

    The only departure: ``slope_frac = 0`` (which the model's formats never use) takes 0 as
    the rounding constant, where the model's ``1 << (sf - 1)`` would not be defined."""
    s, b0, b1 = (np.asarray(a, dtype=np.int64) for a in (s, b0, b1))
    t = _sat(s + b0, res_bits)
    if slope is None:
        v = _shift_round(t, np.asarray(exp, dtype=np.int64))
        negative = np.where(np.asarray(neg) == 1, -v, v)
    else:
        sf = slope_frac
        negative = (t * np.asarray(slope, dtype=np.int64) + ((1 << (sf - 1)) if sf else 0)) >> sf
    out = np.where(t >= 0, t, negative)
    out += b1
    _sat(out, res_bits, out=out)
    return out


def pack(values, bits):
    """Channel c of ``values`` in bits ``[c*bits, (c+1)*bits)``, two's complement."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (c * bits) for c, v in enumerate(values))


def unpack(word, bits, channels):
    out = []
    for c in range(channels):
        v = (word >> (c * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def make_vectors(dut, rows):
    """Input dicts for :func:`rtl_pipeline` from per-channel rows (``None`` = bubble)."""
    rb, c = dut.res_bits, dut.channels
    vectors = []
    for row in rows:
        if row is None:
            vectors.append(None)
            continue
        v = {"s": pack(row["s"], rb), "b0": pack(row["b0"], rb), "b1": pack(row["b1"], rb)}
        if dut.form == "shift":
            v["exp"] = pack(row["exp"], 5)
            v["neg"] = pack(row["neg"], 1)
        else:
            v["slope"] = pack(row["slope"], dut.slope_bits)
        assert len(row["s"]) == c
        vectors.append(v)
    return vectors


def expected_rows(dut, rows):
    """Per-row expected outputs (``None`` for bubbles) from :func:`ref_rprelu`."""
    out = []
    for row in rows:
        if row is None:
            out.append(None)
            continue
        kw = {"res_bits": dut.res_bits}
        if dut.form == "shift":
            kw.update(exp=row["exp"], neg=row["neg"])
        else:
            kw.update(slope=row["slope"], slope_frac=dut.slope_frac)
        out.append([int(y) for y in ref_rprelu(row["s"], row["b0"], row["b1"], **kw)])
    return out


def check(dut, rows):
    """Run ``rows`` through ``dut`` and compare every channel with the reference; a failure
    names the row, its inputs, and the expected and actual outputs."""
    got = rtl_pipeline(dut, make_vectors(dut, rows))
    index = [i for i, row in enumerate(rows) if row is not None]
    assert [t for t, _ in got] == [i + dut.latency - 1 for i in index]
    expected = [y for y in expected_rows(dut, rows) if y is not None]
    for i, (_, g), e in zip(index, got, expected):
        y = unpack(g["y"], dut.res_bits, dut.channels)
        assert y == e, f"row {i} ({rows[i]}): expected {e}, got {y}"


def random_rows(dut, number, rng, bubble=0.15):
    """Random rows for ``dut``: exponents and slope signs within what it is built for."""
    lo, hi = int_range(dut.res_bits)
    slo, shi = int_range(dut.slope_bits)
    c = dut.channels

    def res():
        pick = rng.integers(0, 6, size=c)
        any_ = rng.integers(lo, hi + 1, size=c)
        small = rng.integers(max(lo, -40), min(hi, 40) + 1, size=c)
        return np.select([pick == 0, pick == 1, pick == 2, pick == 3],
                         [np.full(c, lo), np.full(c, hi), np.zeros(c, np.int64), small], any_)

    rows = []
    for _ in range(number):
        if rng.random() < bubble:
            rows.append(None)
            continue
        row = {"s": res(), "b0": np.where(rng.random(c) < 0.5, 0, res()), "b1": res()}
        if dut.form == "shift":
            elo, ehi = dut.exponents or (-15, 3)
            row["exp"] = rng.integers(elo, ehi + 1, size=c)
            row["neg"] = rng.integers(0, 2 if dut.negative_slopes else 1, size=c)
        else:
            pick = rng.integers(0, 5, size=c)
            row["slope"] = np.select(
                [pick == 0, pick == 1, pick == 2],
                [np.full(c, slo), np.full(c, shi), rng.integers(-2 ** dut.slope_frac,
                                                                2 ** dut.slope_frac + 1,
                                                                size=c).clip(slo, shi)],
                rng.integers(slo, shi + 1, size=c))
        rows.append(row)
    return rows


@pytest.mark.parametrize("form", ["shift", "multiply"])
@pytest.mark.parametrize("channels", [1, 3, 16])
def test_random_against_reference(form, channels):
    rng = np.random.default_rng(channels * 10 + len(form))
    dut = RPReLUUnit(channels, form)
    check(dut, random_rows(dut, 600 // channels + 20, rng))


@pytest.mark.parametrize("form, res_bits, slope_bits, slope_frac", [
    ("shift", 2, 16, 12), ("shift", 5, 16, 12), ("shift", 32, 16, 12),
    ("multiply", 2, 2, 1), ("multiply", 2, 6, 0), ("multiply", 8, 5, 4), ("multiply", 12, 9, 8),
    ("multiply", 32, 32, 31), ("multiply", 24, 18, 0),
])
def test_other_widths(form, res_bits, slope_bits, slope_frac):
    rng = np.random.default_rng(res_bits * 100 + slope_bits)
    dut = RPReLUUnit(3, form, res_bits=res_bits, slope_bits=slope_bits, slope_frac=slope_frac)
    check(dut, random_rows(dut, 150, rng))


# 16-bit t values that exercise the rounding: 0, the extremes, odd negatives, exact halves
# (-2**(r-1) * odd) for every right shift r, and one above / below powers of two.
T_EDGES = sorted(t for t in {0, 1, 2, 3, 7, 100, 32767, -1, -2, -3, -5, -7, -9, -101, -255,
                             -32768, -32767, -32766, -12345, -2047}
                 | {-(2 ** (r - 1)) * k for r in range(1, 17) for k in (1, 3)}
                 | {-(2 ** r) - 1 for r in range(1, 15)} | {-(2 ** r) + 1 for r in range(1, 16)}
                 if -32768 <= t <= 32767)


def test_shift_every_exponent_and_rounding():
    exps = list(range(-15, 4))                       # one channel per exponent
    dut = RPReLUUnit(len(exps), "shift")
    rows = []
    for neg in (0, 1):
        for t in T_EDGES:
            rows.append({"s": [t] * len(exps), "b0": [0] * len(exps), "b1": [0] * len(exps),
                         "exp": exps, "neg": [neg] * len(exps)})
    check(dut, rows)
    # spot checks of the formula itself
    y = expected_rows(dut, rows[:len(T_EDGES)])
    i = T_EDGES.index(-3)
    assert y[i][exps.index(-1)] == -1                # -1.5 rounds half up to -1
    assert y[i][exps.index(-2)] == -1                # -0.75 -> -1
    assert y[i][exps.index(3)] == -24
    j = T_EDGES.index(-32768)
    assert y[j][exps.index(3)] == -32768             # -2**18 saturates
    assert y[j][exps.index(-15)] == -1
    y_neg = expected_rows(dut, rows[len(T_EDGES):])
    assert y_neg[i][exps.index(-1)] == 1 and y_neg[j][exps.index(3)] == 32767


def test_shift_every_exponent_without_negative_slopes():
    """The full shifter with k[0]'s level in the stage-3 adder (no negative slopes)."""
    exps = list(range(-15, 4))
    dut = RPReLUUnit(len(exps), "shift", negative_slopes=False)
    check(dut, [{"s": [t] * len(exps), "b0": [0] * len(exps), "b1": [b1] * len(exps),
                 "exp": exps, "neg": [0] * len(exps)} for t in T_EDGES for b1 in (0, -9)])


def test_shift_biases_and_saturation():
    lo, hi = int_range(16)
    dut = RPReLUUnit(3, "shift")
    rows = []
    for s, b0 in [(lo, lo), (hi, hi), (lo, hi), (hi, lo), (lo, 0), (hi, 0), (-1, 1), (0, -1),
                  (5, -10), (-10, 5), (lo, -1), (hi, 1)]:
        for b1 in (lo, hi, 0, -7, 9):
            rows.append({"s": [s] * 3, "b0": [b0] * 3, "b1": [b1] * 3,
                         "exp": [3, -1, -15], "neg": [1, 0, 1]})
    check(dut, rows)


def test_multiply_slope_extremes_and_rounding():
    lo, hi = int_range(16)
    slopes = [-32768, 32767, 0, 1, -1, 4096, -4096, 2048, 3, 1000]
    dut = RPReLUUnit(len(slopes), "multiply")
    rows = []
    for t in T_EDGES:
        for b1 in (0, lo, hi):
            rows.append({"s": [t] * len(slopes), "b0": [0] * len(slopes),
                         "b1": [b1] * len(slopes), "slope": slopes})
    check(dut, rows)
    y = expected_rows(dut, rows[:1])                 # the first row is t = -32768, b1 = 0
    assert T_EDGES[0] == -32768
    assert y[0][0] == 32767 and y[0][1] == -32768    # +2**18 saturates high, -2**18 low
    assert y[0][5] == -32768 and y[0][6] == 32767    # slope -1.0 saturates: 32768 > max


def test_out_of_range_exponents():
    """-16 is exact; 4..15 behave like 3 (the exporter writes -15..3 only)."""
    dut = RPReLUUnit(13, "shift")
    exps = [-16] + list(range(4, 16))
    rows = [{"s": [t] * 13, "b0": [0] * 13, "b1": [0] * 13, "exp": exps, "neg": [n] * 13}
            for n in (0, 1) for t in (-32768, -32767, -2 ** 15 + 1, -1, -3, -4096, 0, 5)]
    vectors = make_vectors(dut, rows)
    got = [unpack(g["y"], 16, 13) for _, g in rtl_pipeline(dut, vectors)]
    for row, y in zip(rows, got):
        ref16 = expected_rows(dut, [dict(row, exp=[-16] * 13)])[0][0]
        ref3 = expected_rows(dut, [dict(row, exp=[3] * 13)])[0][0]
        assert y == [ref16] + [ref3] * 12


@pytest.mark.parametrize("exponents", [(-4, -1), (-15, 3), (-3, -3), (0, 0), (-2, 2), (1, 3),
                                       (-15, -15), (-5, -2), (3, 3), (-2, -1), (-5, -4),
                                       (-6, -3)])
@pytest.mark.parametrize("negative_slopes", [True, False])
def test_shifter_for_a_layers_exponents(exponents, negative_slopes):
    """A unit built for ``lo..hi`` (and without negative slopes) equals the reference on every
    exponent of the range, at the rounding edges and on random rows."""
    lo, hi = exponents
    exps = list(range(lo, hi + 1))
    dut = RPReLUUnit(len(exps), "shift", exponents=exponents, negative_slopes=negative_slopes)
    rows = [{"s": [t] * len(exps), "b0": [0] * len(exps), "b1": [b1] * len(exps), "exp": exps,
             "neg": [neg] * len(exps)}
            for neg in ((0, 1) if negative_slopes else (0,)) for t in T_EDGES for b1 in (0, -9)]
    check(dut, rows)
    check(dut, random_rows(dut, 80, np.random.default_rng((lo + 20) * 31 + hi + 20)))


def test_shifter_for_a_layers_exponents_is_smaller(tmp_path):
    """A unit built for a layer's exponents is smaller on xc7 than the full shifter, and
    smaller still without negative slopes (k[0]'s step shares the adder's LUTs, the other step
    the saturation's); one exponent needs no shift step at all."""
    def luts(**kw):
        text = verilog.convert(RPReLUUnit(1, "shift", **kw), name="part", emit_src=False)
        return synthesize(text, "part", "xc7", cache_dir=tmp_path)["lut"]
    layer = luts(exponents=(-4, -1))
    assert layer < luts()
    assert luts(exponents=(-4, -1), negative_slopes=False) < layer

    def muxes(**kw):
        return rtlil.convert(RPReLUUnit(4, "shift", **kw), emit_src=False).count("cell $mux ")
    assert muxes(exponents=(-4, -1)) < muxes(exponents=(-15, 3)) <= muxes()
    assert muxes(exponents=(-1, -1), negative_slopes=False) < muxes(exponents=(-2, -1),
                                                                    negative_slopes=False)


@pytest.mark.parametrize("form", ["shift", "multiply"])
def test_constants_travel_with_the_data(form):
    """Every input, constants included, changes every cycle without bubbles."""
    rng = np.random.default_rng(7)
    dut = RPReLUUnit(2, form)
    check(dut, random_rows(dut, 120, rng, bubble=0.0))


@pytest.mark.parametrize("form", ["shift", "multiply"])
def test_latency_and_valid(form):
    dut = RPReLUUnit(1, form)
    assert dut.latency == 4
    extra = {"exp": [-1], "neg": [1]} if form == "shift" else {"slope": [-2048]}   # * -0.5
    rows = [None, {"s": [-5], "b0": [0], "b1": [0], **extra}, None, None,
            {"s": [7], "b0": [-1], "b1": [100], **extra}]
    got = rtl_pipeline(dut, make_vectors(dut, rows))
    # shift: -1 * round_half_up(-5 / 2) = -1 * -2 = 2; multiply: (-5 * -2048 + 2048) >> 12 = 3
    y_neg = 2 if form == "shift" else 3
    assert got == [(4, {"y": pack([y_neg], 16)}), (7, {"y": pack([106], 16)})]


@pytest.mark.parametrize("form", ["shift", "multiply"])
def test_reset_clears_valid_pipeline(form):
    assert_reset_clears_valid(RPReLUUnit(1, form))


def test_ports_and_multipliers():
    shift = elaborated(RPReLUUnit(3, "shift"))
    mult = elaborated(RPReLUUnit(3, "multiply", res_bits=12, slope_bits=10, slope_frac=7))
    assert {n: len(getattr(shift, n)) for n in shift.signature.members} == {
        "s": 48, "b0": 48, "b1": 48, "exp": 15, "neg": 3, "in_valid": 1, "y": 48,
        "out_valid": 1}
    assert {n: len(getattr(mult, n)) for n in mult.signature.members} == {
        "s": 36, "b0": 36, "b1": 36, "slope": 30, "in_valid": 1, "y": 36, "out_valid": 1}
    for dut in (shift, mult):
        assert set(dut.port_doc) == set(dut.signature.members)
        assert dut.signature.members["y"].flow.name == "Out"
    assert "$mul" not in rtlil.convert(RPReLUUnit(3, "shift"), emit_src=False)
    assert rtlil.convert(RPReLUUnit(3, "multiply"), emit_src=False).count("cell $mul ") == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 0, "form": "shift"}, r"channels must be in 1\.\.1024, got 0"),
    ({"channels": 1025, "form": "shift"}, r"channels must be in 1\.\.1024, got 1025"),
    ({"channels": 2.0, "form": "shift"}, r"channels must be an integer"),
    ({"channels": 4, "form": "pow2"}, r"form must be one of 'shift', 'multiply', got 'pow2'"),
    ({"channels": 4, "form": None}, r"form must be one of"),
    ({"channels": 4, "form": "shift", "res_bits": 1}, r"res_bits must be in 2\.\.32, got 1"),
    ({"channels": 4, "form": "shift", "res_bits": 33}, r"res_bits must be in 2\.\.32, got 33"),
    ({"channels": 4, "form": "multiply", "slope_bits": 1},
     r"slope_bits must be in 2\.\.32, got 1"),
    ({"channels": 4, "form": "multiply", "slope_bits": 40},
     r"slope_bits must be in 2\.\.32, got 40"),
    ({"channels": 4, "form": "multiply", "slope_frac": -1},
     r"slope_frac must be in 0\.\.15, got -1"),
    ({"channels": 4, "form": "multiply", "slope_bits": 8, "slope_frac": 8},
     r"slope_frac must be in 0\.\.7, got 8"),
    ({"channels": 4, "form": "multiply", "slope_frac": True}, r"slope_frac must be an integer"),
    ({"channels": 4, "form": "shift", "exponents": (-16, 0)},
     r"exponents\[0\] must be in -15\.\.3, got -16"),
    ({"channels": 4, "form": "shift", "exponents": (0, -1)},
     r"exponents\[1\] must be in 0\.\.3, got -1"),
    ({"channels": 4, "form": "shift", "exponents": (0, 4)},
     r"exponents\[1\] must be in 0\.\.3, got 4"),
    ({"channels": 4, "form": "shift", "exponents": 2}, r"exponents must be a pair \(lo, hi\)"),
    ({"channels": 4, "form": "shift", "negative_slopes": 0},
     r"negative_slopes must be True or False, got 0"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(BincountError, match=match):
        RPReLUUnit(**kwargs)
