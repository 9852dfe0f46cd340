"""Whole-network integer export: a trained :class:`BinaryResNet` as one ``bincount-network`` .npz.

``export_arrays(model)`` computes every integer (docs/conventions.md "Whole network"; layout in
docs/formats.md); ``export_network(model, path)`` writes them atomically;
``load_model(checkpoint)`` rebuilds a network from a training checkpoint. The arithmetic the
integers drive is :mod:`bincount.model.network_reference` (numpy) and
``model.forward_fixed`` (torch); both agree bit for bit.
"""

import json

import numpy as np
import torch

from bincount.errors import BincountError
from bincount.model import fixed_point as fp
from bincount.model.bits import pack_bits
from bincount.model.net_format import DEFAULT_FORMAT, NetFormat
from bincount.model.real_conv import fold_real_conv
from bincount.model.network_file import (BIT_ORDER, FORMAT, VERSION, load_export, save_export,
                                         validate_export)
from bincount.model.rprelu import pow2_exponent

__all__ = ["export_arrays", "export_network", "load_model", "load_export", "input_lut",
           "bn_affine", "binary_layer_constants", "stem_fold", "downsample_fold", "head_fold",
           "DEFAULT_MEAN", "DEFAULT_STD"]

#: CIFAR-10 normalisation (as ``bincount.model.cifar``), used by the input look-up table.
DEFAULT_MEAN = (0.4914, 0.4822, 0.4465)
DEFAULT_STD = (0.2470, 0.2435, 0.2616)
#: Keys a checkpoint may hold the network config / the state dict under (first found wins).


def _np64(t):
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
    var = _np64(bn.running_var)
    if not np.all(var + bn.eps > 0):
        raise BincountError("BatchNorm variance + eps is not positive; calibrate or train first")
    sigma = np.sqrt(var + bn.eps)
    gamma = _np64(bn.weight) if bn.weight is not None else np.ones_like(var)
    beta = _np64(bn.bias) if bn.bias is not None else np.zeros_like(var)
    a, b = gamma / sigma, beta - gamma * _np64(bn.running_mean) / sigma
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise BincountError("BatchNorm parameters are not finite")
    return a, b


def stem_fold(stem, fmt):
    """``fold_real_conv`` of the stem (conv + BN, eval semantics)."""
    a, b = bn_affine(stem.bn)
    return fold_real_conv(_np64(stem.conv.weight), a, b, fmt.in_frac, fmt.in_bits, fmt.res_frac,
                          fmt.real_w_bits, fmt.real_mul_bits, fmt.real_off_bits, "stem")


def downsample_fold(ds, fmt, what="downsample"):
    """``fold_real_conv`` of a real downsample; the 2x2 pool's 1/4 is folded into the weights
    (the integer input is the sum of the 4 pixels)."""
    a, b = bn_affine(ds.bn)
    pre, extra = (0.25, 2) if ds.stride == 2 else (1.0, 0)
    return fold_real_conv(_np64(ds.conv.weight).reshape(ds.out_channels, -1), a * pre, b,
                          fmt.res_frac, fmt.res_bits + extra, fmt.res_frac, fmt.real_w_bits,
                          fmt.real_mul_bits, fmt.real_off_bits, what)


def head_fold(head, pool, fmt):
    """``fold_real_conv`` of the FC head; its integer input is the sum over ``pool`` pixels."""
    nc = head.num_classes
    bias = _np64(head.fc.bias) if head.fc.bias is not None else np.zeros(nc)
    extra = int(np.ceil(np.log2(pool))) if pool > 1 else 0
    return fold_real_conv(_np64(head.fc.weight), np.full(nc, 1.0 / pool), bias, fmt.res_frac,
                          fmt.res_bits + extra, fmt.logit_frac, fmt.real_w_bits,
                          fmt.real_mul_bits, fmt.real_off_bits, "head")


def _store(arrays, prefix, r):
    arrays[prefix + "weight"] = r["weight"]
    arrays[prefix + "mul"], arrays[prefix + "offset"] = r["mul"], r["offset"]
    arrays[prefix + "shift"] = np.array(r["shift"], dtype=np.int64)
    return r["shift"]


def _to_res(v, fmt):
    return fp.saturate(fp.round_half_up(np.asarray(v, dtype=np.float64) * 2.0 ** fmt.res_frac),
                       fmt.res_bits)


def binary_layer_constants(conv, fmt):
    """The constants of a binary conv's form: ``threshold/hi/lo`` or ``mul/offset/shift``."""
    arrays = {}
    _binary_layer(arrays, "", conv, fmt)
    return arrays


def _binary_layer(arrays, p, conv, fmt):
    """The binary conv of one block: weight bits and its form's constants."""
    w = _np64(conv.weight)
    cout, n = w.shape[0], conv.n
    arrays[p + "weight_bits"] = pack_bits((w >= 0).astype(np.uint8).transpose(0, 2, 3, 1)
                                          .reshape(cout, n))
    stats = conv.bn_stats()                  # identity when count_bn == "none"
    if conv.form == "binarized":
        with torch.no_grad():
            delta = _np64(conv.delta())
        t, hi, lo = fp.binarized_constants(_np64(conv.alpha), delta, *stats, n,
                                           fmt.res_bits, fmt.res_frac)
        arrays[p + "threshold"], arrays[p + "hi"], arrays[p + "lo"] = t, hi, lo
        return None
    scale = np.abs(w).mean(axis=(1, 2, 3))
    m, o, s = fp.baseline_constants(scale, *stats, out_frac=fmt.res_frac, mul_bits=fmt.mul_bits,
                                    off_bits=fmt.off_bits)
    arrays[p + "mul"], arrays[p + "offset"] = m, o
    arrays[p + "shift"] = np.array(s, dtype=np.int64)
    return s


def export_arrays(model, fmt=None, mean=DEFAULT_MEAN, std=DEFAULT_STD, source=None):
    """All integers of ``model`` (a :class:`BinaryResNet`, eval semantics) as a checked dict.

    ``fmt``: a :class:`NetFormat` (or dict of its fields); ``mean``/``std``: the input
    normalisation (for ``input_lut``); ``source``: informative (checkpoint, recipe).
    The result holds the arrays of the file plus ``"meta"`` (the parsed metadata).
    """
    fmt = fmt if isinstance(fmt, NetFormat) else (NetFormat.from_dict(fmt) if fmt
                                                  else DEFAULT_FORMAT)
    if not hasattr(model, "blocks") or not hasattr(model, "config"):
        raise BincountError("export expects a bincount network (build_network / load_model)")
    arrays = {"input_lut": input_lut(fmt, mean, std)}
    stem = model.stem
    stem_shift = _store(arrays, "stem.", stem_fold(stem, fmt))
    layers = []
    size = 32
    for block in model.blocks:
        conv, p = block.conv, block.name + "."
        pad_bit = conv.pad_bit                       # raises for zero padding
        out_size = (size + 2 * conv.padding - conv.kernel_size) // conv.stride + 1
        info = {"name": block.name, "cin": conv.in_channels, "cout": conv.out_channels,
                "k": conv.kernel_size, "stride": conv.stride, "n": conv.n, "in_size": size,
                "out_size": out_size, "pad_bit": pad_bit, "form": conv.form,
                "rsign": block.rsign is not None,
                "downsample": block.downsample.mode if block.downsample is not None else None,
                "rprelu": block.rprelu.slopes if block.rprelu is not None else None,
                "delta_uses_scale": conv.delta_uses_scale, "division_rule": conv.division_rule,
                "division_alpha": conv.division_alpha, "count_bn": conv.count_bn}
        if block.rsign is not None:
            arrays[p + "rsign_bias"] = _to_res(_np64(block.rsign.shift.bias).reshape(-1), fmt)
        info["shift"] = _binary_layer(arrays, p, conv, fmt)
        ds = block.downsample
        if ds is not None and ds.mode == "real":
            info["down_shift"] = _store(arrays, p + "down.",
                                        downsample_fold(ds, fmt, f"{block.name} downsample"))
        if block.rprelu is not None:
            r = block.rprelu
            arrays[p + "rprelu.bias0"] = _to_res(_np64(r.bias0).reshape(-1), fmt)
            arrays[p + "rprelu.bias1"] = _to_res(_np64(r.bias1).reshape(-1), fmt)
            slope = _np64(r.slope)
            if r.slopes == "trained":
                arrays[p + "rprelu.slope"] = fp.saturate(
                    fp.round_half_up(slope * 2.0 ** fmt.slope_frac), fmt.slope_bits)
            else:
                with torch.no_grad():
                    e = pow2_exponent(r.slope.detach().double()).numpy()
                arrays[p + "rprelu.slope_exp"] = e.astype(np.int64)
                arrays[p + "rprelu.slope_neg"] = (slope < 0).astype(np.int64)
        layers.append(info)
        size = out_size
    head = model.head
    pool = size * size
    head_shift = _store(arrays, "head.", head_fold(head, pool, fmt))
    config = dict(model.config)
    meta = {"format": FORMAT, "version": VERSION, "network": config["network"],
            "variant": config["variant"], "width_mult": config["width_mult"],
            "config": config, "arch": model.arch, "formats": fmt.as_dict(),
            "form": layers[0]["form"], "bit_order": BIT_ORDER,
            "input": {"channels": 3, "size": 32, "mean": [float(v) for v in mean],
                      "std": [float(v) for v in std],
                      "quantisation": "x_int = sat(round_half_up(x_normalised * 2**in_frac), "
                                      "in_bits); from uint8 pixels: input_lut[c, pixel]"},
            "stem": {"cin": stem.in_channels, "cout": stem.out_channels, "k": stem.kernel_size,
                     "size": 32, "shift": stem_shift},
            "layers": layers,
            "head": {"cin": head.in_channels, "classes": head.num_classes, "pool": pool,
                     "shift": head_shift},
            "source": source if source is not None else {}}
    arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    return validate_export(arrays, where="network export")


def export_network(model, path, fmt=None, mean=DEFAULT_MEAN, std=DEFAULT_STD, source=None):
    """Write ``model`` as a ``bincount-network`` .npz to ``path`` (atomic); returns the arrays."""
    arrays = export_arrays(model, fmt, mean, std, source)
    return save_export(path, arrays)


def load_model(checkpoint, option="--checkpoint"):
    """A :class:`BinaryResNet` in eval mode from a checkpoint file (or an already loaded dict).

    The file is read by the one checkpoint reader, :func:`bincount.model.train.load_checkpoint`
    (``weights_only=True``, every field checked), the same as ``eval`` and ``convert-ptq`` use.
    """
    from bincount.model import train as tr

    if isinstance(checkpoint, dict):
        ckpt = tr.check_checkpoint(checkpoint, "checkpoint")
        where = "checkpoint"
    else:
        ckpt = tr.load_checkpoint(checkpoint, option)
        where = f"{option} {str(checkpoint)!r}"
    return tr.model_from_checkpoint(ckpt, "cpu", where=where)
