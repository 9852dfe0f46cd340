"""Folding of trained layers into the export's integers (below the layers and the exporter).

The functions here turn one trained part into integers, by the rules of docs/conventions.md
"Whole network": the input table, the real convolutions (stem, 1x1 downsample, FC head:
BN / affine folded, 10-bit weights, a power-of-two multiplier and an offset) and the constants
of a binary conv's form. Both the layers (their ``fixed_point`` forward) and
:mod:`bincount.model.export.network_export` (the whole network) call them, so neither imports the
other.
"""

import numpy as np
import torch

from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.export.bits import pack_bits
from bincount.model.export.net_format import DEFAULT_FORMAT
from bincount.model.export.real_conv import fold_real_conv

__all__ = ["DEFAULT_MEAN", "DEFAULT_STD", "input_lut", "bn_affine", "stem_fold",
           "downsample_fold", "head_fold", "binary_layer_constants", "binary_layer_arrays",
           "to_res", "np64"]

#: CIFAR-10 normalisation (as ``bincount.model.data.cifar``), used by the input look-up table.
DEFAULT_MEAN = (0.4914, 0.4822, 0.4465)
DEFAULT_STD = (0.2470, 0.2435, 0.2616)


def np64(t):
    """A tensor as a float64 numpy array (detached, on the CPU)."""
    return t.detach().cpu().double().numpy()


def input_lut(fmt=DEFAULT_FORMAT, mean=DEFAULT_MEAN, std=DEFAULT_STD):
    """``int64 [3, 256]``: pixel ``p`` of channel ``c`` as the quantised normalised input,
    ``sat(round_half_up(((p/255 - mean_c)/std_c) * 2**in_frac), in_bits)``, with the
    normalisation computed in float32 exactly as ``cifar.normalize`` does."""
    p = np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32)[:, None]
    s = np.asarray(std, dtype=np.float32)[:, None]
    x = ((p - m) / s).astype(np.float64)
    return fp.saturate(fp.round_half_up(x * 2.0 ** fmt.in_frac), fmt.in_bits)


def bn_affine(bn):
    """``(A, B)`` float64 of an inference BatchNorm: ``BN(v) = A*v + B``."""
    var = np64(bn.running_var)
    if not np.all(var + bn.eps > 0):
        raise BincountError("BatchNorm variance + eps is not positive; calibrate or train first")
    sigma = np.sqrt(var + bn.eps)
    gamma = np64(bn.weight) if bn.weight is not None else np.ones_like(var)
    beta = np64(bn.bias) if bn.bias is not None else np.zeros_like(var)
    a, b = gamma / sigma, beta - gamma * np64(bn.running_mean) / sigma
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise BincountError("BatchNorm parameters are not finite")
    return a, b


def stem_fold(stem, fmt):
    """``fold_real_conv`` of the stem (conv + BN, eval semantics)."""
    a, b = bn_affine(stem.bn)
    return fold_real_conv(np64(stem.conv.weight), a, b, fmt.in_frac, fmt.in_bits, fmt.res_frac,
                          fmt.real_w_bits, fmt.real_mul_bits, fmt.real_off_bits, "stem")


def downsample_fold(ds, fmt, what="downsample"):
    """``fold_real_conv`` of a real downsample; the 2x2 pool's 1/4 is folded into the weights
    (the integer input is the sum of the 4 pixels)."""
    a, b = bn_affine(ds.bn)
    pre, extra = (0.25, 2) if ds.stride == 2 else (1.0, 0)
    return fold_real_conv(np64(ds.conv.weight).reshape(ds.out_channels, -1), a * pre, b,
                          fmt.res_frac, fmt.res_bits + extra, fmt.res_frac, fmt.real_w_bits,
                          fmt.real_mul_bits, fmt.real_off_bits, what)


def head_fold(head, pool, fmt):
    """``fold_real_conv`` of the FC head; its integer input is the sum over ``pool`` pixels."""
    nc = head.num_classes
    bias = np64(head.fc.bias) if head.fc.bias is not None else np.zeros(nc)
    extra = int(np.ceil(np.log2(pool))) if pool > 1 else 0
    return fold_real_conv(np64(head.fc.weight), np.full(nc, 1.0 / pool), bias, fmt.res_frac,
                          fmt.res_bits + extra, fmt.logit_frac, fmt.real_w_bits,
                          fmt.real_mul_bits, fmt.real_off_bits, "head")


def to_res(v, fmt):
    return fp.saturate(fp.round_half_up(np.asarray(v, dtype=np.float64) * 2.0 ** fmt.res_frac),
                       fmt.res_bits)


def binary_layer_constants(conv, fmt):
    """The constants of a binary conv's form: ``threshold/hi/lo`` or ``mul/offset/shift``."""
    arrays = {}
    binary_layer_arrays(arrays, "", conv, fmt)
    return arrays


def binary_layer_arrays(arrays, p, conv, fmt):
    """The binary conv of one block: weight bits and its form's constants."""
    w = np64(conv.weight)
    cout, n = w.shape[0], conv.n
    arrays[p + "weight_bits"] = pack_bits((w >= 0).astype(np.uint8).transpose(0, 2, 3, 1)
                                          .reshape(cout, n))
    stats = conv.bn_stats()                  # identity when count_bn == "none"
    if conv.form == "binarized":
        with torch.no_grad():
            delta = np64(conv.delta())
        t, hi, lo = fp.binarized_constants(np64(conv.alpha), delta, *stats, n,
                                           fmt.res_bits, fmt.res_frac)
        arrays[p + "threshold"], arrays[p + "hi"], arrays[p + "lo"] = t, hi, lo
        return None
    scale = np.abs(w).mean(axis=(1, 2, 3))
    m, o, s = fp.baseline_constants(scale, *stats, out_frac=fmt.res_frac, mul_bits=fmt.mul_bits,
                                    off_bits=fmt.off_bits)
    arrays[p + "mul"], arrays[p + "offset"] = m, o
    arrays[p + "shift"] = np.array(s, dtype=np.int64)
    return s
