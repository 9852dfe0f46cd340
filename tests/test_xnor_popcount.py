"""XnorPopcount in the Amaranth simulator against a pure reference."""

import random

import pytest
from amaranth.back import rtlil

from bincount.errors import BincountError
from bincount.gateware.xnor_popcount import XnorPopcount, popcount_latency
from pipeline_sim import assert_pipeline, elaborated, rtl_pipeline


def ref_xnor_popcount(act, wgt, n):
    """docs/conventions.md: ``count = popcount(~(act ^ wgt))`` over ``n`` bits."""
    return bin(~(act ^ wgt) & ((1 << n) - 1)).count("1")


def random_vectors(n, number, rng, bubble=0.2):
    full = (1 << n) - 1
    vectors = [{"act": 0, "wgt": 0}, {"act": full, "wgt": full},       # count n
               {"act": 0, "wgt": full}, {"act": full, "wgt": 0},       # count 0
               None]
    for _ in range(number):
        if rng.random() < bubble:
            vectors.append(None)
            continue
        act = rng.getrandbits(n)
        kind = rng.randrange(4)
        if kind == 0:
            wgt = rng.getrandbits(n)
        elif kind == 1:   # near all-agree: count close to n
            wgt = act ^ (1 << rng.randrange(n))
        elif kind == 2:   # near all-disagree: count close to 0
            wgt = ~act & full ^ (1 << rng.randrange(n))
        else:             # sparse disagreement
            wgt = act ^ rng.getrandbits(n) & rng.getrandbits(n) & rng.getrandbits(n)
        vectors.append({"act": act, "wgt": wgt})
    return vectors


def check(dut, vectors):
    assert_pipeline(dut, vectors, lambda v: {"count": ref_xnor_popcount(v["act"], v["wgt"], dut.n)},
                    outputs=("count",))


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 13, 64, 100, 576])
def test_random_against_reference(n):
    rng = random.Random(n)
    check(XnorPopcount(n), random_vectors(n, 120 if n < 576 else 60, rng))


def test_exhaustive_small():
    n = 7
    vectors = [{"act": a, "wgt": w} for a in range(1 << n) for w in (0, 0x55, 0x7F)]
    check(XnorPopcount(n), vectors)


def test_bit_order_irrelevant_but_each_bit_counts():
    # A single disagreeing bit at every position lowers the count by exactly one.
    n = 64
    full = (1 << n) - 1
    vectors = [{"act": full, "wgt": full ^ (1 << i)} for i in range(n)]
    got = rtl_pipeline(XnorPopcount(n), vectors, outputs=("count",))
    assert [g["count"] for _, g in got] == [n - 1] * n


@pytest.mark.parametrize("n, latency", [(1, 1), (2, 1), (3, 2), (6, 3), (7, 3), (12, 4),
                                        (24, 5), (96, 6), (576, 9), (1152, 9), (2304, 10),
                                        (4608, 11)])
def test_latency(n, latency):
    assert popcount_latency(n) == latency
    dut = elaborated(XnorPopcount(n)) if n <= 576 else None
    if dut is not None:
        assert dut.latency == latency


def test_valid_propagation():
    n = 64
    dut = XnorPopcount(n)
    lat = dut.latency
    vectors = [None, {"act": 1, "wgt": 1}, None, None, {"act": 0, "wgt": 1}, None,
               {"act": 3, "wgt": 0}]
    assert rtl_pipeline(dut, vectors, outputs=("count",)) == [
        (1 + lat - 1, {"count": 64}), (4 + lat - 1, {"count": 63}), (6 + lat - 1, {"count": 62})]


def test_ports_and_no_multiplier():
    dut = elaborated(XnorPopcount(576))
    assert len(dut.act) == 576 and len(dut.wgt) == 576 and len(dut.count) == 10
    assert len(elaborated(XnorPopcount(1)).count) == 1
    assert len(elaborated(XnorPopcount(4)).count) == 3
    assert set(dut.port_doc) == set(dut.signature.members)
    assert "$mul" not in rtlil.convert(XnorPopcount(64), emit_src=False)


@pytest.mark.parametrize("n, match", [
    (0, r"n must be in 1\.\.65536, got 0"),
    (-1, r"n must be in 1\.\.65536, got -1"),
    (65537, r"n must be in 1\.\.65536, got 65537"),
    ("576", r"n must be an integer in 1\.\.65536, got '576'"),
])
def test_bad_parameters(n, match):
    with pytest.raises(BincountError, match=match):
        XnorPopcount(n)
