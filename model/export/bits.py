"""Binary vectors as numpy bits: sign, packing, XNOR-popcount and im2col (torch-free).

Encoding (docs/conventions.md): bit 1 means +1, bit 0 means -1, ``sign(0) = +1``.
The N-bit vector of one output element of a k x k convolution is ordered tap-major,
channel-minor: ``n = (ky * k + kx) * Cin + ci``. Packed into bytes little-endian in bits:
element n is bit ``n % 8`` of byte ``n // 8`` (``np.packbits(..., bitorder="little")``);
the unused high bits of the last byte are 0.
"""

import numpy as np

__all__ = ["sign_bits", "pack_bits", "unpack_bits", "packed_bytes", "popcount_bytes",
           "xnor_popcount", "im2col_bits", "conv_out_size", "bits_to_int"]

_POPCOUNT_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def sign_bits(x):
    """Bits of ``sign(x)``: ``1`` where ``x >= 0`` (so sign(0) = sign(-0.0) = +1), else ``0``.

    Returns a ``uint8`` array of the shape of ``x``.
    """
    return (np.asarray(x) >= 0).astype(np.uint8)


def packed_bytes(n):
    """Number of bytes that hold ``n`` bits: ``ceil(n / 8)``."""
    return (int(n) + 7) // 8


def pack_bits(bits):
    """Pack 0/1 values along the last axis into ``uint8`` bytes, little bit order.

    ``bits[..., n]`` becomes bit ``n % 8`` of byte ``n // 8``; the last byte is zero-padded.
    """
    bits = np.asarray(bits)
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("pack_bits expects values 0 or 1")
    return np.packbits(bits.astype(np.uint8), axis=-1, bitorder="little")


def unpack_bits(packed, n):
    """Inverse of :func:`pack_bits`: ``uint8 [..., ceil(n/8)]`` to 0/1 ``uint8 [..., n]``."""
    packed = np.asarray(packed, dtype=np.uint8)
    return np.unpackbits(packed, axis=-1, count=int(n), bitorder="little")


def popcount_bytes(a):
    """Number of set bits of each byte of a ``uint8`` array (same shape, ``uint8``)."""
    a = np.asarray(a, dtype=np.uint8)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _POPCOUNT_LUT[a]


def xnor_popcount(act_packed, wgt_packed, n):
    """``count = popcount(~(act ^ wgt))`` over the first ``n`` bits of packed vectors.

    ``act_packed`` and ``wgt_packed`` are ``uint8 [..., ceil(n/8)]`` arrays that broadcast
    against each other; the result is ``int64 [...]`` in ``0..n``. Bits at positions ``>= n``
    (the padding of the last byte) are masked off, whatever they hold.
    """
    n = int(n)
    nbytes = packed_bytes(n)
    a = np.asarray(act_packed, dtype=np.uint8)
    w = np.asarray(wgt_packed, dtype=np.uint8)
    if a.shape[-1] != nbytes or w.shape[-1] != nbytes:
        raise ValueError(f"packed vectors of {n} bits need {nbytes} bytes, "
                         f"got {a.shape[-1]} and {w.shape[-1]}")
    x = np.bitwise_not(np.bitwise_xor(a, w))
    if n % 8:
        x[..., -1] &= np.uint8((1 << (n % 8)) - 1)
    return popcount_bytes(x).sum(axis=-1, dtype=np.int64)


def conv_out_size(size, k, stride):
    """Output size of a k x k convolution with padding ``k // 2``: ``(size + 2p - k) // s + 1``."""
    p = k // 2
    return (int(size) + 2 * p - int(k)) // int(stride) + 1


def im2col_bits(x_bits, k, stride=1, pad_bit=1):
    """The N-bit input vector of every output pixel of a k x k convolution.

    ``x_bits``: 0/1 array ``[C, H, W]``. Padding is ``p = k // 2`` pixels of the constant
    ``pad_bit`` (1, i.e. +1, per the conventions). Returns ``uint8 [Ho, Wo, N]`` with
    ``N = k*k*C`` and element ``n = (ky*k + kx)*C + ci`` equal to
    ``x[ci, y*stride + ky - p, x*stride + kx - p]``.
    """
    x = np.asarray(x_bits, dtype=np.uint8)
    if x.ndim != 3:
        raise ValueError(f"im2col_bits expects bits [C, H, W], got shape {x.shape}")
    c, h, w = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)), constant_values=np.uint8(pad_bit))
    ho, wo = conv_out_size(h, k, stride), conv_out_size(w, k, stride)
    taps = []
    for ky in range(k):
        for kx in range(k):
            taps.append(xp[:, ky:ky + stride * (ho - 1) + 1:stride,
                           kx:kx + stride * (wo - 1) + 1:stride])   # [C, Ho, Wo]
    cols = np.stack(taps, axis=0)                                   # [k*k, C, Ho, Wo]
    return np.ascontiguousarray(cols.transpose(2, 3, 0, 1).reshape(ho, wo, k * k * c))


def bits_to_int(bits):
    """A 0/1 vector as a Python integer ``sum(bit_n << n)`` (how Verilog sees port bit n)."""
    return sum(int(b) << i for i, b in enumerate(np.asarray(bits).ravel()))
