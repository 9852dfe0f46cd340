"""RPReLU (ReActNet): ``y = PReLU(x + b0_c) + b1_c`` with one slope per channel.

Slopes (``slopes``):

- ``"trained"``: the learned slope ``a_c`` as is (one multiply per negative value in hardware);
- ``"pow2"``: the forward uses ``pow2(a_c) = sign(a_c) * 2**e_c`` with
  ``e_c = clamp(round(log2|a_c|), POW2_MIN_EXP, POW2_MAX_EXP)`` (``a_c = 0`` counts as
  positive), so that the slope is a shift (and a negation) in hardware; the gradient passes
  straight through to ``a_c``.

Float forward: ``t = x + b0``; ``u = t if t >= 0 else slope * t``; ``y = u + b1``. With ``fq``
(``fixed_point`` flag) biases, slopes, ``t``, the negative branch and ``y`` are rounded and
saturated as in the integer export (the negative branch in float64, where it is exact).
"""

import torch
from torch import nn

from bincount.errors import BincountError
from bincount.model.fake_quant import fq_round, fq_value

__all__ = ["RPReLU", "SLOPE_MODES", "POW2_MIN_EXP", "POW2_MAX_EXP", "pow2_exponent", "pow2_round"]

SLOPE_MODES = ("trained", "pow2")
POW2_MIN_EXP = -15
POW2_MAX_EXP = 3


def pow2_exponent(a):
    """``e = clamp(round(log2|a|), POW2_MIN_EXP, POW2_MAX_EXP)`` (tensor; ``a = 0`` gives the min)."""
    mag = torch.clamp(a.detach().abs(), min=2.0 ** (POW2_MIN_EXP - 1))
    return torch.clamp(torch.round(torch.log2(mag)), POW2_MIN_EXP, POW2_MAX_EXP)


def pow2_round(a):
    """``sign(a) * 2**pow2_exponent(a)`` (sign(0) = +1) with a straight-through gradient."""
    sgn = torch.where(a.detach() >= 0, torch.ones_like(a), -torch.ones_like(a))
    hard = sgn * torch.pow(2.0, pow2_exponent(a))
    return a + (hard - a).detach()


class RPReLU(nn.Module):
    """``PReLU(x + b0) + b1`` per channel; slopes as trained or rounded to powers of two."""

    def __init__(self, channels, slopes="trained", init_slope=0.25):
        super().__init__()
        if slopes not in SLOPE_MODES:
            raise BincountError(f"unknown RPReLU slope mode {slopes!r}; expected one of "
                                f"{', '.join(SLOPE_MODES)}")
        self.channels = int(channels)
        self.slopes = slopes
        self.bias0 = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.slope = nn.Parameter(torch.full((channels,), float(init_slope)))
        self.bias1 = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.fq = None

    def extra_repr(self):
        return f"{self.channels}, slopes={self.slopes!r}"

    def effective_slope(self):
        """The slope the forward uses (``[C]``)."""
        return pow2_round(self.slope) if self.slopes == "pow2" else self.slope

    def forward(self, x):
        if self.fq is not None:
            return self._forward_fq(x, self.fq)
        t = x + self.bias0
        a = self.effective_slope().view(1, -1, 1, 1)
        return torch.where(t >= 0, t, a * t) + self.bias1

    def _forward_fq(self, x, f):
        t = fq_value(x + fq_value(self.bias0, f), f)
        a = self.effective_slope()
        if self.slopes == "trained":               # integer: (t * a_int + 2**(sf-1)) >> sf
            a = fq_round(a, f.slope_frac, f.slope_bits).double().view(1, -1, 1, 1)
            neg = fq_round(t.double() * a, f.res_frac, 64)
        else:                                      # integer: +-((t + 2**(r-1)) >> r)
            sgn = torch.where(a.detach() >= 0, 1.0, -1.0).double().view(1, -1, 1, 1)
            neg = sgn * fq_round(t.double() * (a.double().view(1, -1, 1, 1) * sgn), f.res_frac, 64)
        neg = neg.to(t.dtype)                      # rounded, not saturated (as the integer)
        return fq_value(torch.where(t >= 0, t, neg) + fq_value(self.bias1, f), f)
