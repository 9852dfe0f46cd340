"""Whole-network integer export: a trained :class:`BinaryResNet` as one ``bincount-network`` .npz.

``export_arrays(model)`` computes every integer (docs/conventions.md "Whole network"; layout in
docs/formats.md); ``export_network(model, path)`` writes them atomically (a network from a training checkpoint:
:func:`bincount.model.training.train.load_model`); the folding of each part is
:mod:`bincount.model.export.folding`. The arithmetic the
integers drive is :mod:`bincount.model.export.network_reference` (numpy) and
``model.forward_fixed`` (torch); both agree bit for bit.
"""

import contextlib
import json

import numpy as np
import torch

from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.export.folding import (DEFAULT_MEAN, DEFAULT_STD, binary_layer_arrays,
                                    binary_layer_constants, bn_affine, downsample_fold, head_fold,
                                    input_lut, np64, stem_fold, to_res)
from bincount.model.export.net_format import DEFAULT_FORMAT, NetFormat
from bincount.model.export.network_file import (BIT_ORDER, FORMAT, VERSION, load_export, save_export,
                                         validate_export)
from bincount.model.layers.rprelu import pow2_exponent

__all__ = ["export_arrays", "export_network", "load_export", "input_lut",
           "bn_affine", "binary_layer_constants", "stem_fold", "downsample_fold", "head_fold",
           "DEFAULT_MEAN", "DEFAULT_STD"]

def _store(arrays, prefix, r):
    arrays[prefix + "weight"] = r["weight"]
    arrays[prefix + "mul"], arrays[prefix + "offset"] = r["mul"], r["offset"]
    arrays[prefix + "shift"] = np.array(r["shift"], dtype=np.int64)
    return r["shift"]


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
    with _part("stem"):
        stem_shift = _store(arrays, "stem.", stem_fold(stem, fmt))
    layers = []
    size = 32
    for block in model.blocks:
        with _part(block.name):
            info = _block_arrays(arrays, block, size, fmt)
        layers.append(info)
        size = info["out_size"]
    head = model.head
    pool = size * size
    with _part("head"):
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


def _block_arrays(arrays, block, size, fmt):
    """Fold one block of the network into ``arrays``; its layer description (``meta``)."""
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
        arrays[p + "rsign_bias"] = to_res(np64(block.rsign.shift.bias).reshape(-1), fmt)
    info["shift"] = binary_layer_arrays(arrays, p, conv, fmt)
    ds = block.downsample
    if ds is not None and ds.mode == "real":
        info["down_shift"] = _store(arrays, p + "down.",
                                    downsample_fold(ds, fmt, f"{block.name} downsample"))
    if block.rprelu is not None:
        r = block.rprelu
        arrays[p + "rprelu.bias0"] = to_res(np64(r.bias0).reshape(-1), fmt)
        arrays[p + "rprelu.bias1"] = to_res(np64(r.bias1).reshape(-1), fmt)
        slope = np64(r.slope)
        if r.slopes == "trained":
            arrays[p + "rprelu.slope"] = fp.saturate(
                fp.round_half_up(slope * 2.0 ** fmt.slope_frac), fmt.slope_bits)
        else:
            with torch.no_grad():
                e = pow2_exponent(r.slope.detach().double()).numpy()
            arrays[p + "rprelu.slope_exp"] = e.astype(np.int64)
            arrays[p + "rprelu.slope_neg"] = (slope < 0).astype(np.int64)
    return info


@contextlib.contextmanager
def _part(name):
    """An error while folding a part names the part (``stage1.conv1: ...``), unless the
    folding's message already starts with it (``stem: ...``, ``stage2.conv1 downsample: ...``)."""
    try:
        yield
    except BincountError as exc:
        if str(exc).startswith(name):
            raise
        raise BincountError(f"{name}: {exc}") from None


def export_network(model, path, fmt=None, mean=DEFAULT_MEAN, std=DEFAULT_STD, source=None):
    """Write ``model`` as a ``bincount-network`` .npz to ``path`` (atomic); returns the arrays."""
    arrays = export_arrays(model, fmt, mean, std, source)
    return save_export(path, arrays)
