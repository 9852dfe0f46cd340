"""The real-valued stem: 3x3 conv (stride 1, zero padding 1, no bias) -> BN. No max-pool.

With ``fq`` (a ``NetFormat``, set by the network's ``fixed_point`` flag) the input, the weights
and the output are fake-quantised onto the integer export's grid; in eval mode exactly as the
export computes them (BN folded into power-of-two-scaled integer weights, ``real_conv.py``),
in float64, so the result equals the integer stem bit for bit.
"""

import torch

import torch.nn.functional as F
from torch import nn

from bincount.model.layers import fastpath
from bincount.model.layers.fake_quant import (fq_round, fq_round_fused, fq_value, fq_value_fused,
                                       fq_weight)
from bincount.model.export.folding import stem_fold

__all__ = ["Stem"]


def _float(v):
    """float32 of a convolution's output (bfloat16 / float16 under autocast): the BN and the
    fixed-point rounding after it are float32."""
    return v.float() if v.dtype in (torch.float16, torch.bfloat16) else v


class Stem(nn.Module):
    """``BN(conv3x3(x))``: ``[B, 3, 32, 32] -> [B, C0, 32, 32]``, real weights."""

    def __init__(self, in_channels=3, out_channels=64, kernel_size=3):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.fq = None

    def forward(self, x):
        if self.fq is None:
            return self.bn(_float(self.conv(x)))
        f = self.fq
        if self.training and fastpath.enabled():
            x = fq_round_fused(x, f.in_frac, f.in_bits)
            w = fq_weight(self.conv.weight, f.real_w_bits)
            v = _float(F.conv2d(x, w, padding=self.kernel_size // 2))
            return fq_value_fused(self.bn(v), f)
        x = fq_round(x, f.in_frac, f.in_bits)
        if self.training:
            w = fq_weight(self.conv.weight, f.real_w_bits)
            return fq_value(self.bn(F.conv2d(x, w, padding=self.kernel_size // 2)), f)

        r = stem_fold(self, f)
        v = F.conv2d(x.double(), torch.as_tensor(r["wq"]), padding=self.kernel_size // 2)
        v = v + torch.as_tensor(r["bq"]).view(1, -1, 1, 1)
        return fq_value(v, f).to(x.dtype)
