"""Fixed point of the real-valued convolutions (stem, 1x1 downsample, FC head), torch-free.

A real conv followed by an affine map (its BN, or the FC bias), ``y = A_c * conv(x, W_c) + B_c``,
with an input in a fixed-point format of ``in_frac`` fractional bits, becomes:

1. **fold** the affine scale (and any constant pre-scale such as 1/4 of a 2x2 average pool or
   1/pixels of the global pool) into the weights: ``W'_c = A_c * pre * W_c``;
2. **quantise** ``W'_c`` per output channel with a **power-of-two** scale:
   ``k_c = floor(log2((2**(w_bits-1) - 1) / max|W'_c|))``, ``W_int = round_half_up(W'_c * 2**k_c)``;
3. **requantise** the integer accumulator ``acc = sum W_int * x_int`` to the output format
   (``out_frac``) with one shared shift ``S`` and a power-of-two multiplier:
   ``S_c = k_c + in_frac - out_frac``, ``S = max(0, max_c S_c)`` (limited so that
   ``M_c = 2**(S - S_c)`` fits ``mul_bits``; channels beyond that lose low weight bits),
   ``O_c = round_half_up(B_c * 2**(S + out_frac)) + 2**(S-1)`` (``+0`` for ``S = 0``), and
   ``y = sat((M_c * acc + O_c) >> S)``.

Because ``M_c`` is a power of two, ``y`` equals ``round_half_up((conv(x, Wq_c) + Bq_c) *
2**out_frac)`` with ``Wq_c = W_int * 2**-k_c`` and ``Bq_c = (O_c - 2**(S-1)) / 2**(S + out_frac)``
exactly, evaluated in float64 (every term is a multiple of ``2**-(S + out_frac)``, and
``|M_c| * max|acc| + |O_c| < 2**53`` is checked here): that is how the ``fixed_point`` float
forward reproduces these layers bit for bit.
"""

import numpy as np

from bincount.errors import BincountError
from bincount.model.export.fixed_point import round_half_up, saturate

__all__ = ["fold_real_conv"]


def fold_real_conv(weight, a, b, in_frac, in_bits, out_frac, w_bits, mul_bits, off_bits,
                   what="real conv"):
    """The integers of one real conv (see the module docstring).

    ``weight``: ``[Cout, ...]`` float; ``a``, ``b``: ``[Cout]`` (``a`` includes any
    pre-scale). Returns a dict: ``weight`` (``int64``, the shape of ``weight``), ``mul``,
    ``offset`` (``int64 [Cout]``), ``shift`` (int), ``wq`` (float64 ``W_int * 2**-k_c``),
    ``bq`` (float64 ``[Cout]``), ``k`` (``int64 [Cout]``).
    """
    w = np.asarray(weight, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise BincountError(f"{what}: weights or affine parameters are not finite")
    cout = w.shape[0]
    shape = (-1,) + (1,) * (w.ndim - 1)
    wf = w * a.reshape(shape)
    top = float((1 << (w_bits - 1)) - 1)
    m = np.abs(wf.reshape(cout, -1)).max(axis=1)
    k = np.where(m > 0, np.floor(np.log2(top / np.where(m > 0, m, 1.0))), 0.0).astype(np.int64)
    k = np.clip(k, -60, 60)
    sc = k + in_frac - out_frac
    spread = mul_bits - 2
    s = int(max(0, min(int(sc.max()), int(sc.min()) + spread)))
    k = k - np.maximum(sc - s, 0)              # channels whose shift would exceed S
    sc = k + in_frac - out_frac
    w_int = saturate(round_half_up(wf * np.power(2.0, k).reshape(shape)), w_bits)
    mul = np.left_shift(np.int64(1), (s - sc).astype(np.int64))
    oq = round_half_up(b * 2.0 ** (s + out_frac))
    off = oq + ((1 << (s - 1)) if s > 0 else 0)
    lo, hi = -(1 << (off_bits - 1)), (1 << (off_bits - 1)) - 1
    if np.any(off < lo) or np.any(off > hi):
        raise BincountError(f"{what}: an offset does not fit {off_bits} bits")
    if np.any(mul >= (1 << (mul_bits - 1))):
        raise BincountError(f"{what}: a multiplier does not fit {mul_bits} bits")
    acc_bound = np.abs(w_int.reshape(cout, -1)).sum(axis=1).astype(np.float64) \
        * 2.0 ** (in_bits - 1)
    if np.max(acc_bound * mul + np.abs(off)) >= 2.0 ** 53:
        raise BincountError(f"{what}: M * acc + O can exceed 53 bits (float64-exact emulation "
                            f"and int64 headroom); use fewer weight bits")
    return {"weight": w_int.astype(np.int64), "mul": mul.astype(np.int64),
            "offset": off.astype(np.int64), "shift": s,
            "wq": w_int.astype(np.float64) * np.power(2.0, -k).reshape(shape),
            "bq": oq.astype(np.float64) / 2.0 ** (s + out_frac), "k": k}
