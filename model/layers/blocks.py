"""One binary block of ReActNet-18 / Bi-Real-Net-18 (every binary conv has its own shortcut).

``arch == "reactnet"``::

    a   = RSign(x)                     # sign(x + b_c), learnable bias b_c
    y   = NetBinaryConv2d(a)           # binary 3x3 conv -> BN (baseline or binarized counting)
    s   = y + shortcut(x)              # identity, or Downsample at a stage entry
    out = RPReLU(s)                    # PReLU(s + b0_c) + b1_c

``arch == "bireal"``: ``a = sign(x)``, ``out = y + shortcut(x)`` (no RSign bias, no RPReLU).

With ``fq`` (the network's ``fixed_point`` flag) the RSign bias, ``y`` and the sum are
fake-quantised onto the integer export's grid (``bincount.model.layers.fake_quant``); in eval mode
``y`` is the exported layer's integer output (``hi``/``lo`` by threshold, or
``sat((M*d + O) >> S)``, evaluated exactly in float64), divided by ``2**res_frac``.
"""

import torch
from torch import nn

from bincount.errors import BincountError
from bincount.model.layers import fastpath
from bincount.model.layers.fake_quant import fq_add_fused, fq_value
from bincount.model.layers.net_binary_conv import NetBinaryConv2d
from bincount.model.layers.rprelu import RPReLU
from bincount.model.layers.rsign import RSign
from bincount.model.layers.shortcut import Downsample
from bincount.model.layers.ste import sign_ste
from bincount.model.export.fixed_point import int_range
from bincount.model.export.folding import binary_layer_constants

__all__ = ["BinaryBlock", "ARCHS"]

ARCHS = ("reactnet", "bireal")


def _hooked(module):
    """Whether forward hooks watch ``module`` (the fused path would bypass its ``__call__``)."""
    return any(bool(m._forward_pre_hooks or m._forward_hooks) for m in module.modules())


class BinaryBlock(nn.Module):
    """A binary block; ``conv_kwargs`` go to :class:`NetBinaryConv2d` (form, delta, padding)."""

    def __init__(self, in_channels, out_channels, stride=1, arch="reactnet", downsample=None,
                 shortcut="real", slopes="trained", name="", **conv_kwargs):
        super().__init__()
        if arch not in ARCHS:
            raise BincountError(f"unknown block arch {arch!r}; expected one of {', '.join(ARCHS)}")
        self.name = name
        self.arch = arch
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        if downsample is None:
            downsample = stride != 1 or in_channels != out_channels
        self.rsign = RSign(in_channels) if arch == "reactnet" else None
        self.conv = NetBinaryConv2d(in_channels, out_channels, 3, stride, **conv_kwargs)
        self.downsample = (Downsample(in_channels, out_channels, stride, shortcut)
                           if downsample else None)
        self.rprelu = RPReLU(out_channels, slopes) if arch == "reactnet" else None
        self.fq = None

    def binarize(self, x):
        """The +-1 input of the binary conv: ``sign(x + b)`` (ReActNet) or ``sign(x)``."""
        if self.rsign is None:
            return sign_ste(x)
        if self.fq is None:
            return self.rsign(x)
        return sign_ste(x + fq_value(self.rsign.shift.bias, self.fq))

    def shortcut(self, x):
        return self.downsample(x) if self.downsample is not None else x

    def conv_fixed_point(self, bits):
        """Eval-mode ``fixed_point`` output of the binary conv: the export's integers / 2**frac."""
        f, conv = self.fq, self.conv
        c = binary_layer_constants(conv, f)
        d = conv.dot(bits).double()

        def col(key):
            return torch.as_tensor(c[key], dtype=torch.float64).view(1, -1, 1, 1)

        if conv.form == "binarized":
            y = torch.where((d + conv.n) / 2 >= col("threshold"), col("hi"), col("lo"))
        else:   # M*d + O < 2**53: exact in float64; floor(/2**S) is the arithmetic shift
            y = torch.clamp(torch.floor((col("mul") * d + col("offset")) / 2.0 ** int(c["shift"])),
                            *int_range(f.res_bits))
        return (y / 2.0 ** f.res_frac).to(bits.dtype)

    def forward(self, x):
        if fastpath.enabled() and (self.fq is None or self.training):
            return self._forward_fast(x)
        if self.fq is None:
            s = self.conv(self.binarize(x)) + self.shortcut(x)
        elif self.training:
            s = fq_value(fq_value(self.conv(self.binarize(x)), self.fq) + self.shortcut(x),
                         self.fq)
        else:
            s = fq_value(self.conv_fixed_point(self.binarize(x)) + self.shortcut(x), self.fq)
        return self.rprelu(s) if self.rprelu is not None else s

    def _forward_fast(self, x):
        """:meth:`forward` on the fused path: the RSign bias goes into the binary conv's fused
        sign (unless hooks watch the RSign or the conv: then both are called as modules, the
        conv on the +-1 input), the fixed-point sum ``fq(fq(y) + shortcut)`` is one node."""
        f = self.fq
        if _hooked(self.conv) or (self.rsign is not None and _hooked(self.rsign)):
            y = self.conv(self.binarize(x))      # hooks see the modules' own inputs
        else:
            bias = None
            if self.rsign is not None:
                bias = self.rsign.shift.bias if f is None else fq_value(self.rsign.shift.bias, f)
            y = self.conv.forward_fast(x, bias)
        s = y + self.shortcut(x) if f is None else fq_add_fused(y, self.shortcut(x), f)
        return self.rprelu(s) if self.rprelu is not None else s
