"""RSignCompare in the Amaranth simulator against the integer reference of the network."""

import numpy as np
import pytest
from amaranth.back import rtlil

from bincount.errors import BincountError
from bincount.gateware.rsign_compare import RSignCompare
from bincount.model.export.fixed_point import int_range
from pipeline_sim import elaborated, rtl_pipeline, assert_reset_clears_valid


def ref_rsign(x, bias):
    """``NetworkReference`` (``_Binary.run``): ``bits = (x + rsign_bias >= 0)``, exact int64."""
    return (np.asarray(x, dtype=np.int64) + np.asarray(bias, dtype=np.int64) >= 0).astype(int)


def pack(values, bits):
    """Channel c of ``values`` in bits ``[c*bits, (c+1)*bits)``, two's complement."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (c * bits) for c, v in enumerate(values))


def check(dut, rows):
    """``rows``: ``(x, bias)`` per-channel lists or ``None`` (bubble); compares every bit."""
    rb = dut.res_bits
    vectors = [None if r is None else {"x": pack(r[0], rb), "bias": pack(r[1], rb)}
               for r in rows]
    got = rtl_pipeline(dut, vectors, outputs=("bits",))
    index = [i for i, r in enumerate(rows) if r is not None]
    assert [t for t, _ in got] == [i + dut.latency - 1 for i in index]
    for i, (_, g) in zip(index, got):
        exp = list(ref_rsign(*rows[i]))
        bits = [(g["bits"] >> c) & 1 for c in range(dut.channels)]
        assert bits == exp, f"row {i} ({rows[i]}): expected {exp}, got {bits}"


def random_rows(channels, res_bits, number, rng, bubble=0.15):
    lo, hi = int_range(res_bits)

    def values():
        pick = rng.integers(0, 5, size=channels)
        any_ = rng.integers(lo, hi + 1, size=channels)
        return np.select([pick == 0, pick == 1], [np.full(channels, lo), np.full(channels, hi)],
                         any_)

    rows = []
    for _ in range(number):
        if rng.random() < bubble:
            rows.append(None)
            continue
        x, bias = values(), values()
        near = rng.random(channels) < 0.3                       # x + bias in -1..1
        x = np.where(near, (-bias + rng.integers(-1, 2, size=channels)).clip(lo, hi), x)
        rows.append((list(x), list(bias)))
    return rows


@pytest.mark.parametrize("channels", [1, 3, 16, 64])
def test_random_against_reference(channels):
    rng = np.random.default_rng(channels)
    check(RSignCompare(channels), random_rows(channels, 16, 800 // channels + 30, rng))


@pytest.mark.parametrize("res_bits", [2, 3, 8, 32])
def test_other_widths(res_bits):
    rng = np.random.default_rng(res_bits)
    check(RSignCompare(5, res_bits=res_bits), random_rows(5, res_bits, 150, rng))


def test_edges():
    lo, hi = int_range(16)
    pairs = [
        (0, 0), (1, -1), (-1, 1), (0, -1), (-1, 0), (5, -6), (-6, 5),   # sum 0 -> 1, -1 -> 0
        (lo, lo), (hi, hi),              # would wrap in 16 bits: -65536 -> 0, 65534 -> 1
        (lo, hi), (hi, lo),              # -1 -> 0
        (lo, 0), (hi, 0), (0, lo), (0, hi), (lo, -1), (hi, 1), (lo + 1, hi), (hi, -hi),
    ]
    check(RSignCompare(1), [([x], [b]) for x, b in pairs])          # one pair per cycle
    xs, bs = [x for x, _ in pairs], [b for _, b in pairs]
    check(RSignCompare(len(pairs)), [(xs, bs), None, (bs, xs), (xs[::-1], bs[::-1])])
    assert list(ref_rsign([lo, hi, lo, 0, 0], [lo, hi, hi, 0, -1])) == [0, 1, 0, 1, 0]


def test_latency_and_valid():
    dut = RSignCompare(2)
    assert dut.latency == 1
    vectors = [None, {"x": pack([3, -3], 16), "bias": pack([-3, 2], 16)}, None, None,
               {"x": pack([-1, 0], 16), "bias": pack([0, 0], 16)}]
    assert rtl_pipeline(dut, vectors, outputs=("bits",)) == [(1, {"bits": 0b01}),
                                                              (4, {"bits": 0b10})]


def test_reset_clears_valid():
    assert_reset_clears_valid(RSignCompare(4))


def test_ports_and_no_multiplier():
    dut = elaborated(RSignCompare(16, res_bits=12))
    assert {n: len(getattr(dut, n)) for n in dut.signature.members} == {
        "x": 192, "bias": 192, "in_valid": 1, "bits": 16, "out_valid": 1}
    assert set(dut.port_doc) == set(dut.signature.members)
    assert all(dut.port_doc.values())
    assert (dut.channels, dut.res_bits) == (16, 12)
    assert "$mul" not in rtlil.convert(RSignCompare(16), emit_src=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 0}, r"channels must be in 1\.\.1024, got 0"),
    ({"channels": 1025}, r"channels must be in 1\.\.1024, got 1025"),
    ({"channels": "8"}, r"channels must be an integer"),
    ({"channels": True}, r"channels must be an integer"),
    ({"channels": 8, "res_bits": 1}, r"res_bits must be in 2\.\.32, got 1"),
    ({"channels": 8, "res_bits": 33}, r"res_bits must be in 2\.\.32, got 33"),
    ({"channels": 8, "res_bits": 16.0}, r"res_bits must be an integer"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(BincountError, match=match):
        RSignCompare(**kwargs)
