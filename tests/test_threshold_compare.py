"""ThresholdCompare in the Amaranth simulator against a pure reference."""

import random

import pytest
from amaranth.back import rtlil

from bincount.errors import BincountError
from bincount.gateware.threshold_compare import ThresholdCompare
from pipeline_sim import assert_pipeline, elaborated, rtl_pipeline


def ref_threshold_compare(count, threshold, hi, lo):
    """docs/conventions.md: ``count >= T`` selects hi."""
    return hi if count >= threshold else lo


def random_vectors(n, out_bits, count_, rng, bubble=0.2):
    lim = 2 ** (out_bits - 1)
    vectors = []
    for _ in range(count_):
        if rng.random() < bubble:
            vectors.append(None)
            continue
        t = rng.randint(0, n + 1)
        c = rng.choice([t, t - 1, t + 1, rng.randint(0, n)])
        vectors.append({"count": min(max(c, 0), n), "threshold": t,
                        "hi": rng.randint(-lim, lim - 1), "lo": rng.randint(-lim, lim - 1)})
    return vectors


def check(dut, vectors):
    assert_pipeline(dut, vectors, lambda v: {"y": ref_threshold_compare(**v)})


@pytest.mark.parametrize("n", [1, 2, 7, 64, 576, 4608])
def test_random_against_reference(n):
    rng = random.Random(n)
    check(ThresholdCompare(n), random_vectors(n, 16, 300, rng))


@pytest.mark.parametrize("n", [1, 7, 576])
def test_edges(n):
    hi, lo = 1234, -4321
    vectors = []
    for t in (0, 1, n // 2, n, n + 1):
        for c in (0, t - 1, t, t + 1, n):
            if 0 <= c <= n:
                vectors.append({"count": c, "threshold": t, "hi": hi, "lo": lo})
                vectors.append(None)
    # negative BN scale: hi < lo; output extremes
    vectors.append({"count": n, "threshold": 0, "hi": -32768, "lo": 32767})
    vectors.append({"count": 0, "threshold": n + 1, "hi": -32768, "lo": 32767})
    check(ThresholdCompare(n), vectors)


def test_threshold_zero_always_hi_and_n_plus_1_never():
    n = 7
    vectors = [{"count": c, "threshold": t, "hi": 5, "lo": -5}
               for t in (0, n + 1) for c in range(n + 1)]
    got = [g["y"] for _, g in rtl_pipeline(ThresholdCompare(n), vectors)]
    assert got == [5] * (n + 1) + [-5] * (n + 1)


def test_latency_and_valid():
    dut = ThresholdCompare(64)
    assert dut.latency == 1
    vectors = [None, {"count": 3, "threshold": 3, "hi": 1, "lo": 2}, None, None,
               {"count": 2, "threshold": 3, "hi": 1, "lo": 2}]
    assert rtl_pipeline(dut, vectors) == [(1, {"y": 1}), (4, {"y": 2})]


def test_out_bits():
    rng = random.Random(3)
    check(ThresholdCompare(9, out_bits=4), random_vectors(9, 4, 100, rng))
    assert len(elaborated(ThresholdCompare(9, out_bits=4)).y) == 4


def test_ports():
    dut = elaborated(ThresholdCompare(576))
    assert len(dut.count) == 10 and len(dut.threshold) == 10
    dut511 = elaborated(ThresholdCompare(511))
    assert len(dut511.count) == 9 and len(dut511.threshold) == 10
    assert dut.hi.shape().signed and dut.y.shape().signed and len(dut.y) == 16
    assert set(dut.port_doc) == set(dut.signature.members)


def test_no_multiplier():
    text = rtlil.convert(ThresholdCompare(576), emit_src=False)
    assert "$mul" not in text


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, r"n must be in 1\.\.65536, got 0"),
    ({"n": -5}, r"n must be in"),
    ({"n": 2.5}, r"n must be an integer"),
    ({"n": True}, r"n must be an integer"),
    ({"n": 8, "out_bits": 1}, r"out_bits must be in 2\.\.64, got 1"),
    ({"n": 8, "out_bits": 65}, r"out_bits must be in 2\.\.64, got 65"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(BincountError, match=match):
        ThresholdCompare(**kwargs)
    assert issubclass(BincountError, ValueError)
