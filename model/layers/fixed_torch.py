"""The fixed-point forward of a :class:`BinaryResNet` in torch (``model.forward_fixed``).

It walks the network's own modules (stem, blocks, head) and evaluates each with the integers
of the whole-network export, in torch ``int64`` ops. Convolutions and matrix products are
float64 products of integers whose partial sums stay below 2**53 (checked at export), hence
exact; everything after them (requantising multiply/shift, threshold compare, saturation,
RSign comparison, RPReLU) is ``int64``. The result equals
:mod:`bincount.model.export.network_reference` (numpy) bit for bit; tensor names are those of
:data:`bincount.model.export.network_reference.TENSOR_DOC`.
"""

import numpy as np
import torch
import torch.nn.functional as F

from bincount.errors import BincountError
from bincount.model.export.bits import unpack_bits
from bincount.model.export.fixed_point import int_range
from bincount.model.export.net_format import NetFormat
from bincount.model.export.network_file import export_meta, validate_export
from bincount.model.export.network_export import export_arrays

__all__ = ["network_forward_fixed", "quantize_input_torch"]


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.int64))


def _sat(v, bits):
    lo, hi = int_range(bits)
    return torch.clamp(v, lo, hi)


def _col(a, ndim=4):
    return _t(a).view((1, -1) + (1,) * (ndim - 2))


def _requant(acc, mul, off, shift, bits):
    return _sat((_col(mul, acc.ndim) * acc + _col(off, acc.ndim)) >> int(shift), bits)


def _exact(v):
    """float64 holding integers -> int64 (the values are exact integers)."""
    return torch.round(v).to(torch.int64)


def quantize_input_torch(x, export):
    """Normalised float images ``[B, 3, 32, 32]`` -> ``int64`` input format (integers pass)."""
    fmt = NetFormat.from_dict(export_meta(export)["formats"])
    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, 32, 32):
        raise BincountError(f"images have shape {tuple(x.shape)}; expected [B, 3, 32, 32]")
    if not torch.is_floating_point(x):
        lo, hi = int_range(fmt.in_bits)
        if x.numel() and (int(x.min()) < lo or int(x.max()) > hi):
            raise BincountError(f"integer input outside the {fmt.in_bits}-bit input format")
        return x.to(torch.int64)
    return _sat(torch.floor(x.double() * 2.0 ** fmt.in_frac + 0.5).to(torch.int64), fmt.in_bits)


def _binary_block(block, layer, e, x, fmt, keep):
    name, p = layer["name"], layer["name"] + "."
    k, s, n, cin, cout = layer["k"], layer["stride"], layer["n"], layer["cin"], layer["cout"]
    if (block.conv.in_channels, block.conv.out_channels, block.conv.stride) != (cin, cout, s):
        raise BincountError(f"export layer {name} does not match the model's block")
    rb = fmt.res_bits
    if block.rsign is not None:
        bits = (x + _col(e[p + "rsign_bias"]) >= 0).to(torch.int64)
    else:
        bits = (x >= 0).to(torch.int64)
    pm = float(2 * layer["pad_bit"] - 1)
    xpm = F.pad((2 * bits - 1).double(), [k // 2] * 4, value=pm)
    w = unpack_bits(e[p + "weight_bits"], n).reshape(cout, k, k, cin).transpose(0, 3, 1, 2)
    wpm = torch.as_tensor(2.0 * w.astype(np.float64) - 1.0)
    d = _exact(F.conv2d(xpm, wpm, stride=s))                       # |d| <= N: exact
    count = (d + n) // 2
    if layer["form"] == "binarized":
        y = torch.where(count >= _col(e[p + "threshold"]), _col(e[p + "hi"]), _col(e[p + "lo"]))
    else:
        y = _requant(2 * count - n, e[p + "mul"], e[p + "offset"], e[p + "shift"], rb)
    ds = layer["downsample"]
    if ds is None:
        sc = x
    else:
        xs = x
        if s == 2:
            xs = x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]
        if ds == "real":
            dw = _t(e[p + "down.weight"]).double().view(cout, cin, 1, 1)
            acc = _exact(F.conv2d(xs.double(), dw))
            sc = _requant(acc, e[p + "down.mul"], e[p + "down.offset"], e[p + "down.shift"], rb)
        else:
            if s == 2:
                xs = (xs + 2) >> 2
            sc = xs[:, [c % cin for c in range(cout)]]
    ssum = _sat(y + sc, rb)
    out = ssum
    if layer["rprelu"] is not None:
        t = _sat(ssum + _col(e[p + "rprelu.bias0"]), rb)
        if layer["rprelu"] == "trained":
            sf = fmt.slope_frac
            neg = (t * _col(e[p + "rprelu.slope"]) + (1 << (sf - 1))) >> sf
        else:
            ex = _col(e[p + "rprelu.slope_exp"])
            r = torch.clamp(-ex, min=0)
            left = t << torch.clamp(ex, min=0)
            bias = torch.where(r > 0, torch.ones_like(r) << torch.clamp(r - 1, min=0),
                               torch.zeros_like(r))
            v = torch.where(ex >= 0, left, (t + bias) >> r)
            neg = torch.where(_col(e[p + "rprelu.slope_neg"]) == 1, -v, v)
        out = _sat(torch.where(t >= 0, t, neg) + _col(e[p + "rprelu.bias1"]), rb)
    if keep is not None:
        keep.update({f"{name}.input": x, f"{name}.act_bits": bits.to(torch.uint8),
                     f"{name}.count": count, f"{name}.conv_out": y, f"{name}.shortcut": sc,
                     f"{name}.sum": ssum, f"{name}.output": out})
    return out


@torch.no_grad()
def network_forward_fixed(model, x, export=None, tensors=False):
    """See :meth:`bincount.model.nets.networks.BinaryResNet.forward_fixed`."""
    if export is None:
        export = export_arrays(model)
    elif "meta" not in export:
        export = validate_export(dict(export))
    meta = export_meta(export)
    if meta["config"].get("network") != model.config["network"] \
            or len(meta["layers"]) != len(model.blocks):
        raise BincountError(f"the export is of {meta['network']!r}; the model is "
                            f"{model.config['network']!r}")
    fmt = NetFormat.from_dict(meta["formats"])
    e = export
    xi = quantize_input_torch(x, export)
    keep = {"input": xi} if tensors else None
    w = _t(e["stem.weight"]).double()
    acc = _exact(F.conv2d(xi.double(), w, padding=w.shape[-1] // 2))
    r = _requant(acc, e["stem.mul"], e["stem.offset"], e["stem.shift"], fmt.res_bits)
    if keep is not None:
        keep.update({"stem.acc": acc, "stem.output": r})
    for block, layer in zip(model.blocks, meta["layers"]):
        r = _binary_block(block, layer, e, r, fmt, keep)
    pool = r.sum(dim=(2, 3))
    hacc = _exact(pool.double() @ _t(e["head.weight"]).double().T)
    logits = _requant(hacc, e["head.mul"], e["head.offset"], e["head.shift"], fmt.logit_bits)
    if keep is not None:
        keep.update({"head.pool_sum": pool, "head.acc": hacc, "logits": logits})
        return logits, keep
    return logits
