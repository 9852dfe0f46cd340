"""RSign (ReActNet): a learnable per-channel bias before the sign.

Forward: ``y = sign(x + b_c)`` with ``sign(0) = +1`` (bit 1 = +1). Backward: clipped
straight-through, ``dy/dx = dy/db_c = 1 if |x + b_c| <= 1 else 0``.
"""

import torch
from torch import nn

from bincount.model.layers.ste import sign_ste

__all__ = ["LearnableBias", "RSign"]


class LearnableBias(nn.Module):
    """``y = x + b_c`` with one learnable bias per channel (``b`` starts at 0)."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return x + self.bias


class RSign(nn.Module):
    """``y = sign_ste(x + b_c)``: outputs exact +-1 (a learnable-threshold sign)."""

    def __init__(self, channels):
        super().__init__()
        self.shift = LearnableBias(channels)

    def forward(self, x):
        return sign_ste(self.shift(x))
