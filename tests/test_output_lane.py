"""OutputLane (both forms) in the Amaranth simulator against a pure reference."""

import random

import pytest
from amaranth.back import rtlil

from bincount.errors import BincountError
from bincount.gateware.output_lane import OutputLane
from bincount.gateware.xnor_popcount import popcount_latency
from pipeline_sim import assert_pipeline, elaborated, rtl_pipeline, assert_reset_clears_valid


def ref_count(act, wgt, n):
    return bin(~(act ^ wgt) & ((1 << n) - 1)).count("1")


def ref_lane(v, *, n, form, shift=None, out_bits=16):
    """docs/conventions.md, both forms, on one input dict."""
    count = ref_count(v["act"], v["wgt"], n)
    if form == "binarized":
        return v["hi"] if count >= v["threshold"] else v["lo"]
    y = (v["mul"] * (2 * count - n) + v["offset"]) >> shift
    return min(max(y, -2 ** (out_bits - 1)), 2 ** (out_bits - 1) - 1)


def random_vectors(n, form, number, rng, bubble=0.2):
    full = (1 << n) - 1
    vectors = []
    for i in range(number):
        if rng.random() < bubble:
            vectors.append(None)
            continue
        act = rng.getrandbits(n)
        wgt = [full ^ act, act, rng.getrandbits(n), act ^ rng.getrandbits(n) & rng.getrandbits(n)
               ][rng.randrange(4)] if i > 3 else [0, full][i % 2]   # all zeros / all ones first
        v = {"act": act if i > 3 else [0, full, 0, full][i], "wgt": wgt}
        count = ref_count(v["act"], v["wgt"], n)
        if form == "binarized":
            v["threshold"] = rng.choice([count, count + 1, max(count - 1, 0), 0, n + 1,
                                         rng.randint(0, n + 1)])
            v["hi"] = rng.randint(-2 ** 15, 2 ** 15 - 1)
            v["lo"] = rng.randint(-2 ** 15, 2 ** 15 - 1)
        else:
            v["mul"] = rng.choice([rng.randint(-2 ** 17, 2 ** 17 - 1), rng.randint(-300, 300)])
            v["offset"] = rng.choice([rng.randint(-2 ** 31, 2 ** 31 - 1),
                                      rng.randint(-2 ** 22, 2 ** 22)])
        vectors.append(v)
    return vectors


def check(dut, vectors):
    kw = {"n": dut.n, "form": dut.form, "shift": dut.shift, "out_bits": dut.out_bits}
    assert_pipeline(dut, vectors, lambda v: {"y": ref_lane(v, **kw)})


@pytest.mark.parametrize("form", ["binarized", "baseline"])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 576])
def test_random_against_reference(n, form):
    rng = random.Random(n * 7 + len(form))
    check(OutputLane(n, form), random_vectors(n, form, 100 if n < 576 else 50, rng))


def test_baseline_shift_and_widths():
    rng = random.Random(5)
    dut = OutputLane(64, "baseline", out_bits=12, shift=3, mul_bits=10, off_bits=20)
    vectors = random_vectors(64, "baseline", 80, rng)
    for v in vectors:
        if v is not None:
            v["mul"] = min(max(v["mul"], -512), 511)
            v["offset"] = min(max(v["offset"], -2 ** 19), 2 ** 19 - 1)
    check(dut, vectors)


def test_threshold_edges():
    n = 9
    full = (1 << n) - 1
    act, wgt = full, full ^ 0b1111          # 4 disagreeing bits: count = n - 4 = 5
    vectors = [{"act": act, "wgt": wgt, "threshold": t, "hi": 7, "lo": -7}
               for t in (0, 4, 5, 6, n, n + 1)]
    got = rtl_pipeline(OutputLane(n, "binarized"), vectors)
    assert [g["y"] for _, g in got] == [7, 7, 7, -7, -7, -7]


@pytest.mark.parametrize("form, post", [("binarized", 1), ("baseline", 3)])
def test_latency_and_valid(form, post):
    n = 64
    dut = OutputLane(n, form)
    assert dut.latency == popcount_latency(n) + post
    vectors = random_vectors(n, form, 12, random.Random(1), bubble=0.5)
    got = rtl_pipeline(dut, vectors)
    assert [t for t, _ in got] == [t + dut.latency - 1 for t, v in enumerate(vectors) if v]


def test_constants_travel_with_their_vector():
    # back-to-back vectors whose constants differ: each output must use its own constants
    n = 64
    full = (1 << n) - 1
    vectors = [{"act": full, "wgt": full, "threshold": n, "hi": i, "lo": -i} for i in range(10)]
    got = rtl_pipeline(OutputLane(n, "binarized"), vectors)
    assert [g["y"] for _, g in got] == list(range(10))


def test_reset_clears_valid_pipeline():
    assert_reset_clears_valid(OutputLane(64, "binarized"))


def test_ports():
    b = elaborated(OutputLane(576, "binarized"))
    assert list(b.signature.members) == ["act", "wgt", "in_valid", "threshold", "hi", "lo",
                                         "y", "out_valid"]
    assert len(b.threshold) == 10 and len(b.y) == 16 and b.y.shape().signed
    assert b.shift is None and b.mul_bits is None
    s = elaborated(OutputLane(576, "baseline"))
    assert list(s.signature.members) == ["act", "wgt", "in_valid", "mul", "offset",
                                         "y", "out_valid"]
    assert (s.shift, s.mul_bits, s.off_bits) == (12, 18, 32)
    for dut in (b, s):
        assert set(dut.port_doc) == set(dut.signature.members)
        assert all(dut.port_doc.values())


def test_multipliers():
    assert "$mul" not in rtlil.convert(OutputLane(64, "binarized"), emit_src=False)
    assert rtlil.convert(OutputLane(64, "baseline"), emit_src=False).count("cell $mul ") == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 8, "form": "lut"}, r"form must be one of 'binarized', 'baseline', got 'lut'"),
    ({"n": 0, "form": "binarized"}, r"n must be in 1\.\.65536, got 0"),
    ({"n": 8, "form": "binarized", "shift": 3}, r"shift applies only to form 'baseline'"),
    ({"n": 8, "form": "binarized", "mul_bits": 3, "off_bits": 9},
     r"mul_bits, off_bits apply only to form 'baseline'"),
    ({"n": 8, "form": "binarized", "out_bits": 99}, r"out_bits must be in 2\.\.64, got 99"),
    ({"n": 8, "form": "baseline", "shift": 50}, r"shift must be in 0\.\.40, got 50"),
    ({"n": 8, "form": "baseline", "mul_bits": 0}, r"mul_bits must be in 2\.\.48, got 0"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(BincountError, match=match):
        OutputLane(**kwargs)
