"""BaselineScale in the Amaranth simulator against a pure reference."""

import random

import pytest
from amaranth.back import rtlil

from bincount.errors import BincountError
from bincount.gateware.baseline_scale import BaselineScale
from pipeline_sim import assert_pipeline, elaborated, rtl_pipeline


def ref_baseline_scale(count, mul, offset, *, n, shift, out_bits):
    """docs/conventions.md: ``y = sat((M * (2*count - N) + O) >> S)``, ``>>`` floor."""
    v = (mul * (2 * count - n) + offset) >> shift      # Python >> on int is floor
    return min(max(v, -2 ** (out_bits - 1)), 2 ** (out_bits - 1) - 1)


def random_vectors(n, mul_bits, off_bits, number, rng, bubble=0.2):
    mlim, olim = 2 ** (mul_bits - 1), 2 ** (off_bits - 1)
    vectors = []
    for _ in range(number):
        if rng.random() < bubble:
            vectors.append(None)
            continue
        mul = rng.choice([-mlim, mlim - 1, 0, rng.randint(-mlim, mlim - 1),
                          rng.randint(-64, 64)])
        offset = rng.choice([-olim, olim - 1, 0, rng.randint(-olim, olim - 1),
                             rng.randint(-2 ** 20, 2 ** 20)])
        vectors.append({
            "count": rng.choice([0, n, n // 2, rng.randint(0, n)]),
            "mul": min(max(mul, -mlim), mlim - 1),
            "offset": min(max(offset, -olim), olim - 1),
        })
    return vectors


def check(dut, vectors):
    kw = {"n": dut.n, "shift": dut.shift, "out_bits": dut.out_bits}
    assert_pipeline(dut, vectors, lambda v: {"y": ref_baseline_scale(**v, **kw)})


@pytest.mark.parametrize("n, shift", [(1, 0), (2, 1), (7, 3), (64, 12), (576, 12), (576, 0),
                                      (4608, 20), (4608, 40)])
def test_random_against_reference(n, shift):
    rng = random.Random(n * 100 + shift)
    check(BaselineScale(n, shift), random_vectors(n, 18, 32, 250, rng))


@pytest.mark.parametrize("out_bits, mul_bits, off_bits", [(8, 8, 12), (2, 2, 2), (24, 25, 48)])
def test_other_widths(out_bits, mul_bits, off_bits):
    rng = random.Random(out_bits)
    dut = BaselineScale(100, 4, out_bits=out_bits, mul_bits=mul_bits, off_bits=off_bits)
    check(dut, random_vectors(100, mul_bits, off_bits, 200, rng))


def test_edges():
    n, s = 576, 12
    vectors = [
        {"count": 0, "mul": 1000, "offset": 0},               # d = -N
        {"count": n, "mul": 1000, "offset": 0},               # d = +N
        {"count": n // 2, "mul": 131071, "offset": 12345},    # d = 0: offset only
        {"count": n, "mul": -1000, "offset": 2 ** 11},        # negative multiplier
        {"count": 0, "mul": -1000, "offset": -2 ** 11},
        {"count": n, "mul": 131071, "offset": 2 ** 31 - 1},   # saturate high
        {"count": 0, "mul": 131071, "offset": -2 ** 31},      # saturate low
        {"count": 0, "mul": -131072, "offset": 2 ** 31 - 1},  # saturate high, negative mul
        {"count": n, "mul": -131072, "offset": -2 ** 31},     # saturate low, negative mul
        {"count": 300, "mul": -7, "offset": -1},              # floor of a negative value
        {"count": 288, "mul": 5, "offset": 32767 * 4096},     # exactly the top, no saturation
        {"count": 288, "mul": 5, "offset": 32768 * 4096},     # one above: saturates
        {"count": 288, "mul": 5, "offset": -32768 * 4096},    # exactly the bottom
        {"count": 288, "mul": 5, "offset": -32768 * 4096 - 1},  # one below: saturates
    ]
    check(BaselineScale(n, s), vectors)
    kw = {"n": n, "shift": s, "out_bits": 16}
    ys = [ref_baseline_scale(**v, **kw) for v in vectors]
    assert ys[5] == 32767 and ys[6] == -32768 and ys[7] == 32767 and ys[8] == -32768
    assert ys[9] == -1 and ys[10] == 32767 and ys[11] == 32767
    assert ys[12] == -32768 and ys[13] == -32768


def test_latency_and_valid():
    dut = BaselineScale(8, 1)
    assert dut.latency == 3
    vectors = [{"count": 8, "mul": 3, "offset": 1}, None, None,
               {"count": 0, "mul": 3, "offset": 1}, {"count": 4, "mul": 3, "offset": 1}]
    assert rtl_pipeline(dut, vectors) == [(2, {"y": 12}), (5, {"y": -12}), (6, {"y": 0})]


def test_ports_and_one_multiplier():
    dut = elaborated(BaselineScale(576, 12))
    assert len(dut.count) == 10
    assert dut.mul.shape().signed and len(dut.mul) == 18
    assert dut.offset.shape().signed and len(dut.offset) == 32
    assert dut.y.shape().signed and len(dut.y) == 16
    assert set(dut.port_doc) == set(dut.signature.members)
    text = rtlil.convert(BaselineScale(576, 12), emit_src=False)
    assert text.count("cell $mul ") == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0, "shift": 0}, r"n must be in 1\.\.65536, got 0"),
    ({"n": 8, "shift": -1}, r"shift must be in 0\.\.40, got -1"),
    ({"n": 8, "shift": 41}, r"shift must be in 0\.\.40, got 41"),
    ({"n": 8, "shift": None}, r"shift must be an integer"),
    ({"n": 8, "shift": 2, "out_bits": 1}, r"out_bits must be in 2\.\.64, got 1"),
    ({"n": 8, "shift": 2, "mul_bits": 1}, r"mul_bits must be in 2\.\.48, got 1"),
    ({"n": 8, "shift": 2, "mul_bits": 49}, r"mul_bits must be in 2\.\.48, got 49"),
    ({"n": 8, "shift": 2, "off_bits": 97}, r"off_bits must be in 2\.\.96, got 97"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(BincountError, match=match):
        BaselineScale(**kwargs)
