"""Fixed-point export math and the torch-free integer reference of one layer.

Everything here follows docs/conventions.md ("Fixed point"): outputs are signed
``out_bits``-bit integers with ``out_frac`` fractional bits; every conversion saturates;
``round_half_up(v) = floor(v + 1/2)`` in float64. BN is evaluated in float64 as

    BN_c(v) = gamma_c * (v - mu_c) / sqrt(var_c + eps) + beta_c

Binarized counting (per channel c, N inputs):

    T_c  = clamp(ceil((N + ceil(alpha_c)) / 2), 0, N + 1)     # d >= alpha_c <=> count >= T_c
    hi_c = sat(round_half_up(BN_c(+delta_c) * 2**out_frac))
    lo_c = sat(round_half_up(BN_c(-delta_c) * 2**out_frac))
    y    = hi_c if count >= T_c else lo_c

Baseline, with ``A_c = gamma_c*scale_c/sqrt(var_c+eps)`` and
``B_c = beta_c - gamma_c*mu_c/sqrt(var_c+eps)``:

    M_c = round_half_up(A_c * 2**(out_frac+S))
    O_c = round_half_up(B_c * 2**(out_frac+S)) + (2**(S-1) if S > 0 else 0)
    y   = sat((M_c * d + O_c) >> S)          # d = 2*count - N, >> arithmetic (floor)

with S the largest shift in ``0..40`` for which every M_c fits ``mul_bits`` and every O_c
fits ``off_bits`` (signed).
"""

import json

import numpy as np

from bincount.errors import BincountError
from bincount.model.export.bits import im2col_bits, pack_bits, packed_bytes, xnor_popcount

__all__ = ["OUT_BITS", "OUT_FRAC", "MUL_BITS", "OFF_BITS", "MAX_SHIFT",
           "int_range", "round_half_up", "saturate", "bn_float64",
           "threshold_from_alpha", "binarized_constants", "baseline_constants",
           "export_constants", "binarized_output", "baseline_output",
           "layer_meta", "reference_counts", "reference_layer"]

#: Default fixed-point formats (docs/conventions.md).
OUT_BITS = 16
OUT_FRAC = 8
MUL_BITS = 18
OFF_BITS = 32
MAX_SHIFT = 40


def int_range(bits):
    """Inclusive range ``(-2**(bits-1), 2**(bits-1) - 1)`` of a signed ``bits``-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _check_finite(name, v):
    if not np.all(np.isfinite(v)):
        raise BincountError(f"{name} is not finite (NaN or infinity); "
                            f"check the layer's BatchNorm statistics and weights")


def round_half_up(v):
    """``floor(v + 1/2)`` computed in float64, as ``int64``. Raises if not finite or > 2**62."""
    f = np.floor(np.asarray(v, dtype=np.float64) + 0.5)
    _check_finite("value to round", f)
    if f.size and np.max(np.abs(f)) >= 2.0 ** 62:
        raise BincountError("value to round is beyond the 64-bit integer range")
    return f.astype(np.int64)


def saturate(v, bits):
    """Clip integers to the signed ``bits``-bit range (``int64``)."""
    lo, hi = int_range(bits)
    return np.clip(np.asarray(v, dtype=np.int64), lo, hi)


def _bn_sigma(var, eps):
    """``sqrt(var + eps)`` in float64; :class:`BincountError` unless ``var + eps > 0``."""
    ve = np.asarray(var, dtype=np.float64) + np.asarray(eps, dtype=np.float64)
    if not np.all(ve > 0):
        raise BincountError("BatchNorm variance + eps is not positive; "
                            "expected calibrated running statistics (var >= 0, eps > 0)")
    return np.sqrt(ve)


def bn_float64(v, gamma, beta, mean, var, eps):
    """``gamma * (v - mean) / sqrt(var + eps) + beta`` in float64 (inference BatchNorm)."""
    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return f(gamma) * (f(v) - f(mean)) / _bn_sigma(var, eps) + f(beta)


def threshold_from_alpha(alpha, n):
    """``T = clamp(ceil((n + ceil(alpha)) / 2), 0, n + 1)`` as ``int64``.

    For every integer ``d = 2*count - n``: ``d >= alpha  <=>  count >= T``. ``alpha <= -n``
    gives ``T = 0`` (always hi); ``alpha > n`` gives ``T = n + 1`` (never hi).
    """
    a = np.asarray(alpha, dtype=np.float64)
    if np.any(np.isnan(a)):
        raise BincountError("alpha is NaN; expected a finite count threshold per channel")
    a = np.clip(a, -4.0 * n - 4.0, 4.0 * n + 4.0)      # keeps +-inf and huge values exact
    t = np.ceil((n + np.ceil(a)) / 2.0)
    return np.clip(t, 0, n + 1).astype(np.int64)


def binarized_constants(alpha, delta, gamma, beta, mean, var, eps, n,
                        out_bits=OUT_BITS, out_frac=OUT_FRAC):
    """``(T, hi, lo)`` (``int64 [C]`` each) of the binarized-counting form.

    ``hi = sat(round_half_up(BN(+delta) * 2**out_frac))``, ``lo`` likewise for ``-delta``.
    A negative ``gamma`` gives ``hi < lo``; ``hi`` stays the value for ``count >= T``.
    """
    t = threshold_from_alpha(alpha, n)
    delta = np.asarray(delta, dtype=np.float64)
    hi_f = bn_float64(+delta, gamma, beta, mean, var, eps) * 2.0 ** out_frac
    lo_f = bn_float64(-delta, gamma, beta, mean, var, eps) * 2.0 ** out_frac
    _check_finite("BN(+-delta)", hi_f)
    _check_finite("BN(+-delta)", lo_f)
    lim = 2.0 ** 61
    hi = saturate(round_half_up(np.clip(hi_f, -lim, lim)), out_bits)
    lo = saturate(round_half_up(np.clip(lo_f, -lim, lim)), out_bits)
    return t, hi, lo


def baseline_constants(scale, gamma, beta, mean, var, eps, out_frac=OUT_FRAC,
                       mul_bits=MUL_BITS, off_bits=OFF_BITS, max_shift=MAX_SHIFT):
    """``(M, O, S)`` of the baseline form: ``M, O`` ``int64 [C]``, ``S`` a Python int.

    ``S`` is the largest shift in ``0..max_shift`` for which every ``M_c`` fits ``mul_bits``
    and every ``O_c`` (rounding bias included) fits ``off_bits`` signed bits.
    """
    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    inv = _bn_sigma(var, eps)
    a = f(gamma) * f(scale) / inv
    b = f(beta) - f(gamma) * f(mean) / inv
    _check_finite("baseline scale A_c", a)
    _check_finite("baseline offset B_c", b)
    m_lo, m_hi = int_range(mul_bits)
    o_lo, o_hi = int_range(off_bits)
    for s in range(max_shift, -1, -1):
        mf = np.floor(a * 2.0 ** (out_frac + s) + 0.5)
        of = np.floor(b * 2.0 ** (out_frac + s) + 0.5)
        if np.any(mf < m_lo) or np.any(mf > m_hi) or np.any(np.abs(of) >= 2.0 ** 62):
            continue
        o = of.astype(np.int64) + ((1 << (s - 1)) if s > 0 else 0)
        if np.any(o < o_lo) or np.any(o > o_hi):
            continue
        return mf.astype(np.int64), o, s
    raise BincountError(
        f"the baseline multiplier does not fit: even with shift 0 some M_c exceeds {mul_bits} "
        f"bits or O_c exceeds {off_bits} bits (largest |A_c| = {np.max(np.abs(a)):.4g}, "
        f"|B_c| = {np.max(np.abs(b)):.4g}); use wider mul_bits/off_bits or a smaller out_frac")


def export_constants(weight, alpha, gamma, beta, mean, var, eps, delta=None, division_num=1.0,
                     delta_uses_scale=True, out_bits=OUT_BITS, out_frac=OUT_FRAC,
                     mul_bits=MUL_BITS, off_bits=OFF_BITS):
    """All integer constants of one layer from its float parameters (numpy, float64).

    ``weight`` is ``[Cout, Cin, k, k]``; ``scale_c = mean|W_c|``; unless ``delta`` is given,
    ``delta_c = (scale_c if delta_uses_scale else 1) * N / division_num``.
    Returns a dict with ``weight_bits`` (``uint8 [Cout, ceil(N/8)]``, tap-major channel-minor,
    little bit order), ``threshold``, ``hi``, ``lo``, ``mul``, ``offset`` (``int64 [Cout]``),
    ``shift`` (``int64`` scalar), ``scale`` and ``delta`` (float64, informative).
    """
    w = np.asarray(weight, dtype=np.float64)
    cout, cin, k, _ = w.shape
    n = k * k * cin
    scale = np.abs(w).mean(axis=(1, 2, 3))
    if delta is None:
        delta = (scale if delta_uses_scale else np.ones(cout)) * n / float(division_num)
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), (cout,))
    t, hi, lo = binarized_constants(alpha, delta, gamma, beta, mean, var, eps, n,
                                    out_bits, out_frac)
    mul, off, s = baseline_constants(scale, gamma, beta, mean, var, eps, out_frac,
                                     mul_bits, off_bits)
    wbits = (w >= 0).astype(np.uint8).transpose(0, 2, 3, 1).reshape(cout, n)  # [co, ky, kx, ci]
    return {"weight_bits": pack_bits(wbits), "threshold": t, "hi": hi, "lo": lo,
            "mul": mul, "offset": off, "shift": np.int64(s), "scale": scale, "delta": delta}


def binarized_output(count, threshold, hi, lo):
    """``y = hi if count >= T else lo`` (integers; arrays broadcast)."""
    count = np.asarray(count, dtype=np.int64)
    return np.where(count >= np.asarray(threshold, dtype=np.int64),
                    np.asarray(hi, dtype=np.int64), np.asarray(lo, dtype=np.int64))


def baseline_output(count, n, mul, offset, shift, out_bits=OUT_BITS):
    """``y = sat((M * (2*count - n) + O) >> S)`` with an arithmetic (floor) shift."""
    d = 2 * np.asarray(count, dtype=np.int64) - int(n)
    acc = np.asarray(mul, dtype=np.int64) * d + np.asarray(offset, dtype=np.int64)
    return saturate(np.right_shift(acc, int(shift)), out_bits)


def layer_meta(layer):
    """The metadata dict of a layer dict: ``layer["meta"]`` or the parsed ``meta_json``."""
    if "meta" in layer and isinstance(layer["meta"], dict):
        return layer["meta"]
    return json.loads(str(np.asarray(layer["meta_json"])[()]))


def reference_counts(x_bits, weight_bits, k, stride, n):
    """XNOR-popcounts ``int64 [Cout, Ho, Wo]`` of one input ``x_bits [Cin, H, W]`` (0/1)."""
    cols = im2col_bits(x_bits, k, stride, pad_bit=1)                  # [Ho, Wo, N]
    ho, wo, _ = cols.shape
    act = pack_bits(cols.reshape(ho * wo, n))                          # [P, nbytes]
    wgt = np.asarray(weight_bits, dtype=np.uint8)                     # [Cout, nbytes]
    cout = wgt.shape[0]
    chunk = max(1, (1 << 24) // max(1, cout * packed_bytes(n)))
    out = np.empty((ho * wo, cout), dtype=np.int64)
    for i in range(0, ho * wo, chunk):
        out[i:i + chunk] = xnor_popcount(act[i:i + chunk, None, :], wgt[None, :, :], n)
    return out.T.reshape(cout, ho, wo)


def reference_layer(x_bits, layer):
    """Integer reference of one exported layer: ``(count, y_binarized, y_baseline)``.

    ``x_bits``: 0/1 input bits ``[Cin, H, W]`` or ``[B, Cin, H, W]`` (bit 1 = +1).
    ``layer``: the dict :func:`bincount.model.export.layer_export.load_layer` returns (or the arrays
    of a ``bincount-layer`` ``.npz`` with ``meta_json``). Padding is the constant bit 1.
    Returns three ``int64`` arrays ``[(B,) Cout, Ho, Wo]``: the popcount, the
    binarized-counting output and the baseline output, both in the ``out_bits``/``out_frac``
    format.
    """
    meta = layer_meta(layer)
    k, stride, n, cin = int(meta["k"]), int(meta["stride"]), int(meta["n"]), int(meta["cin"])
    out_bits = int(meta["out_bits"])
    x = np.asarray(x_bits)
    batched = x.ndim == 4
    if not batched:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != cin:
        raise BincountError(f"input bits have shape {np.asarray(x_bits).shape}; "
                            f"expected [{cin}, H, W] or [B, {cin}, H, W]")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise BincountError("input bits must be 0 or 1 (bit 1 means +1)")
    counts = np.stack([reference_counts(xi, layer["weight_bits"], k, stride, n) for xi in x])
    col = (slice(None), None, None)
    yb = binarized_output(counts, layer["threshold"][col], layer["hi"][col], layer["lo"][col])
    yl = baseline_output(counts, n, layer["mul"][col], layer["offset"][col],
                         int(np.asarray(layer["shift"])), out_bits)
    if not batched:
        return counts[0], yb[0], yl[0]
    return counts, yb, yl
