"""Export math and the integer reference (docs/conventions.md "Fixed point")."""

import json

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.export.bits import pack_bits


def test_round_half_up():
    v = np.array([0.5, -0.5, 1.5, -1.5, 2.4999, -2.5001, 0.0, -0.0])
    assert fp.round_half_up(v).tolist() == [1, 0, 2, -1, 2, -3, 0, 0]
    assert fp.round_half_up(v).dtype == np.int64
    with pytest.raises(BincountError):
        fp.round_half_up(np.nan)
    with pytest.raises(BincountError):
        fp.round_half_up(2.0 ** 63)


def test_saturate_and_range():
    assert fp.int_range(16) == (-32768, 32767)
    assert fp.saturate([-40000, -32768, 0, 32767, 40000], 16).tolist() == [
        -32768, -32768, 0, 32767, 32767]


@pytest.mark.parametrize("n", [1, 2, 9, 576])
def test_threshold_equivalence_exhaustive(n):
    rng = np.random.default_rng(n)
    alphas = np.concatenate([
        rng.uniform(-n - 3, n + 3, 200), np.arange(-n - 2, n + 3, max(1, n // 50)),
        np.arange(-n - 2, n + 3, max(1, n // 50)) + 0.5, [-np.inf, np.inf, -1e30, 1e30, -0.0]])
    t = fp.threshold_from_alpha(alphas, n)
    count = np.arange(n + 1)
    d = 2 * count - n
    for a, ti in zip(alphas, t):
        assert 0 <= ti <= n + 1
        assert np.array_equal(d >= a, count >= ti), (a, ti)


def test_threshold_edges():
    n = 576
    t = fp.threshold_from_alpha([-n, -n - 0.5, -1e9, n, n + 0.01, 1e9, 0.0, 0.5, -0.5], n)
    assert t.tolist() == [0, 0, 0, n, n + 1, n + 1, n // 2, n // 2 + 1, n // 2]
    with pytest.raises(BincountError):
        fp.threshold_from_alpha([np.nan], n)


def test_binarized_constants_hand_example():
    # BN(v) = 2 * (v - 0) / sqrt(1 + 0) + 0.5 ; delta = 1
    t, hi, lo = fp.binarized_constants([0.0], [1.0], [2.0], [0.5], [0.0], [1.0], 0.0, n=9)
    assert (t.tolist(), hi.tolist(), lo.tolist()) == ([5], [640], [-384])
    # negative gamma swaps: hi < lo, still the value for count >= T
    _, hi, lo = fp.binarized_constants([0.0], [1.0], [-2.0], [0.5], [0.0], [1.0], 0.0, n=9)
    assert (hi.tolist(), lo.tolist()) == ([-384], [640])
    # saturation
    _, hi, lo = fp.binarized_constants([0.0], [1.0], [1000.0], [0.0], [0.0], [1.0], 0.0, n=9)
    assert (hi.tolist(), lo.tolist()) == ([32767], [-32768])
    with pytest.raises(BincountError):
        fp.binarized_constants([0.0], [1.0], [1.0], [0.0], [0.0], [-1.0], 0.0, n=9)


@pytest.mark.parametrize("seed", range(5))
def test_baseline_shift_is_largest_that_fits(seed):
    rng = np.random.default_rng(seed)
    c = 16
    scale = rng.uniform(0.01, 0.2, c)
    gamma = rng.uniform(-2, 2, c)
    beta = rng.uniform(-1, 1, c)
    mean = rng.uniform(-5, 5, c)
    var = rng.uniform(0.5, 50, c)
    m, o, s = fp.baseline_constants(scale, gamma, beta, mean, var, 1e-5)
    assert m.dtype == np.int64 and o.dtype == np.int64 and isinstance(s, int)
    assert 0 <= s <= fp.MAX_SHIFT
    lo18, hi18 = fp.int_range(fp.MUL_BITS)
    lo32, hi32 = fp.int_range(fp.OFF_BITS)
    assert m.min() >= lo18 and m.max() <= hi18 and o.min() >= lo32 and o.max() <= hi32
    a = gamma * scale / np.sqrt(var + 1e-5)
    b = beta - gamma * mean / np.sqrt(var + 1e-5)
    assert np.array_equal(m, np.floor(a * 2.0 ** (8 + s) + 0.5).astype(np.int64))
    bias = (1 << (s - 1)) if s else 0
    assert np.array_equal(o, np.floor(b * 2.0 ** (8 + s) + 0.5).astype(np.int64) + bias)
    if s < fp.MAX_SHIFT:     # one more bit of shift would overflow M or O
        m2 = np.floor(a * 2.0 ** (9 + s) + 0.5)
        o2 = np.floor(b * 2.0 ** (9 + s) + 0.5) + (1 << s)
        assert m2.min() < lo18 or m2.max() > hi18 or o2.min() < lo32 or o2.max() > hi32
    assert np.all(np.sign(m[np.abs(a) > 1e-3]) == np.sign(a[np.abs(a) > 1e-3]))


def test_baseline_no_fit_is_an_error():
    with pytest.raises(BincountError, match="does not fit"):
        fp.baseline_constants([1e9], [1.0], [0.0], [0.0], [1.0], 0.0)


def test_baseline_output_arithmetic_shift_and_saturation():
    # count 0 of n 1 -> d = -1 ; (5 * -1 + 0) >> 1 = floor(-2.5) = -3
    assert fp.baseline_output([0], 1, [5], [0], 1).tolist() == [-3]
    assert fp.baseline_output([1], 1, [5], [0], 1).tolist() == [2]
    # (M*d + O) >> S with the rounding bias 2**(S-1): round half up of (M*d)/2**S
    assert fp.baseline_output([3], 4, [3], [4], 3).tolist() == [1]       # (6+4)>>3 = 1
    assert fp.baseline_output([4], 4, [1 << 17], [0], 0).tolist() == [32767]
    assert fp.baseline_output([0], 4, [1 << 17], [0], 0).tolist() == [-32768]


def test_binarized_output_tie_selects_hi():
    t = np.array([3, 0, 10])
    got = fp.binarized_output([[3, 0, 9], [2, 0, 10]], t, [7, 7, 7], [-7, -7, -7])
    assert got.tolist() == [[7, 7, -7], [-7, 7, 7]]


def _tiny_layer(weight_bits, cin, n, threshold, hi, lo, mul, offset, shift, k=3, stride=1):
    meta = {"format": "bincount-layer", "version": 1, "cin": cin, "cout": len(threshold),
            "k": k, "stride": stride, "n": n, "out_bits": 16, "out_frac": 8, "mul_bits": 18,
            "off_bits": 32, "shift": shift}
    return {"meta_json": np.array(json.dumps(meta)), "weight_bits": weight_bits,
            "threshold": np.array(threshold, np.int64), "hi": np.array(hi, np.int64),
            "lo": np.array(lo, np.int64), "mul": np.array(mul, np.int64),
            "offset": np.array(offset, np.int64), "shift": np.int64(shift)}


def test_reference_layer_hand_built():
    # Cin 1, 1x1 input of bit 0 (-1); weights all +1: the 8 padding taps (+1) match,
    # the centre does not -> count 8, d = 7
    w = pack_bits(np.ones((2, 9), np.uint8))
    layer = _tiny_layer(w, 1, 9, threshold=[8, 9], hi=[100, 100], lo=[-100, -100],
                        mul=[3, -3], offset=[2, 2], shift=2)
    count, yb, yl = fp.reference_layer(np.zeros((1, 1, 1), np.uint8), layer)
    assert count.tolist() == [[[8]], [[8]]]
    assert yb.tolist() == [[[100]], [[-100]]]            # T = 8 met, T = 9 not
    assert yl.tolist() == [[[(3 * 7 + 2) >> 2]], [[(-3 * 7 + 2) >> 2]]]   # 5, -5
    # batched input gives the same per image
    c2, _, _ = fp.reference_layer(np.zeros((2, 1, 1, 1), np.uint8), layer)
    assert c2.shape == (2, 2, 1, 1) and np.all(c2 == 8)


def test_reference_layer_rejects_bad_input():
    layer = _tiny_layer(pack_bits(np.ones((1, 9), np.uint8)), 1, 9, [0], [1], [0], [1], [0], 0)
    with pytest.raises(BincountError, match="expected"):
        fp.reference_layer(np.zeros((2, 4, 4), np.uint8), layer)
    with pytest.raises(BincountError, match="0 or 1"):
        fp.reference_layer(np.full((1, 4, 4), 2, np.uint8), layer)


def test_export_constants_weight_bit_order():
    # weight[co, ci, ky, kx] -> bit (ky*k + kx)*cin + ci
    w = -np.ones((1, 2, 3, 3))
    w[0, 1, 2, 0] = 0.0       # sign(0) = +1 ; n = (2*3 + 0)*2 + 1 = 13
    w[0, 0, 0, 1] = 0.3       # n = (0*3 + 1)*2 + 0 = 2
    out = fp.export_constants(w, [0.0], [1.0], [0.0], [0.0], [1.0], 1e-5)
    bits = np.unpackbits(out["weight_bits"], axis=-1, bitorder="little", count=18)
    assert np.flatnonzero(bits[0]).tolist() == [2, 13]
    assert out["weight_bits"].shape == (1, 3) and out["weight_bits"].dtype == np.uint8
