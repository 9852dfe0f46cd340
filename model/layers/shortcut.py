"""Downsample shortcut of a stage entry (stride 2 and/or a change of channel count).

Modes (``mode``):

- ``"real"``: ``AvgPool 2x2 -> real 1x1 conv (no bias) -> BN``, the reference implementations'
  shortcut (multiply-accumulates in hardware);
- ``"concat"``: ``AvgPool 2x2 -> channel duplication``: output channel ``c`` is pooled input
  channel ``c mod Cin`` (for ``Cout = 2*Cin`` the pooled map concatenated with itself).
  No weights, no multiplier.

With ``stride == 1`` there is no pooling. With ``fq`` (``fixed_point`` flag) the 1x1 weights
and the output are fake-quantised as in the integer export.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bincount.errors import BincountError
from bincount.model.layers import fastpath
from bincount.model.layers.fake_quant import fq_value, fq_value_fused, fq_weight
from bincount.model.export.folding import downsample_fold

__all__ = ["Downsample", "SHORTCUT_MODES"]

SHORTCUT_MODES = ("real", "concat")


def _float(v):
    """float32 of a convolution's output (bfloat16 / float16 under autocast)."""
    return v.float() if v.dtype in (torch.float16, torch.bfloat16) else v


class Downsample(nn.Module):
    """Shortcut ``[B, Cin, H, W] -> [B, Cout, H/stride, W/stride]`` (see the module docstring)."""

    def __init__(self, in_channels, out_channels, stride=2, mode="real"):
        super().__init__()
        if mode not in SHORTCUT_MODES:
            raise BincountError(f"unknown shortcut {mode!r}; expected one of "
                                f"{', '.join(SHORTCUT_MODES)}")
        if stride not in (1, 2):
            raise BincountError(f"downsample stride must be 1 or 2, got {stride!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        self.mode = mode
        if mode == "real":
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.bn = nn.BatchNorm2d(out_channels)
        self.fq = None

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, mode={self.mode!r}"

    def pool(self, x):
        return F.avg_pool2d(x, 2) if self.stride == 2 else x

    def channel_index(self):
        """Input channel of each output channel of the ``"concat"`` mode."""
        return [c % self.in_channels for c in range(self.out_channels)]

    def forward(self, x):
        x = self.pool(x)
        if self.mode == "real":
            if self.fq is None:
                return self.bn(_float(self.conv(x)))
            if self.training:
                w = fq_weight(self.conv.weight, self.fq.real_w_bits)
                if fastpath.enabled():
                    return fq_value_fused(self.bn(_float(F.conv2d(x, w))), self.fq)
                return fq_value(self.bn(F.conv2d(x, w)), self.fq)

            r = downsample_fold(self, self.fq)         # exact, as the integer export (eval)
            xs = x.double() * (4.0 if self.stride == 2 else 1.0)     # the integer pool sum
            v = F.conv2d(xs, torch.as_tensor(r["wq"]).view(self.out_channels, -1, 1, 1))
            v = v + torch.as_tensor(r["bq"]).view(1, -1, 1, 1)
            return fq_value(v, self.fq).to(x.dtype)
        if not fastpath.enabled():
            if self.fq is not None:
                x = fq_value(x, self.fq)        # the integer mean rounds half up
            return x[:, self.channel_index()]
        if self.fq is not None:
            x = fq_value_fused(x, self.fq)
        if self.out_channels % self.in_channels == 0:   # whole copies: keeps the memory format
            return torch.cat([x] * (self.out_channels // self.in_channels), dim=1)
        return x[:, self.channel_index()]
