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
from bincount.model.layers import fastpath
from bincount.model.layers.fake_quant import fq_round, fq_value
from bincount.model.export.fixed_point import int_range
from bincount.model.layers.ste import step

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
            if self.slopes == "pow2" and fastpath.enabled() and _pow2_exact(self.fq):
                return _RPReLUPow2FQ.apply(x, fq_value(self.bias0, self.fq),
                                           self.effective_slope(), fq_value(self.bias1, self.fq),
                                           self.fq.res_frac, self.fq.res_bits)
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


def _pow2_exact(f):
    """Whether float32 holds every intermediate of the pow2 fixed-point RPReLU exactly: ``t`` has
    ``res_bits`` bits, ``t * 2**e * 2**res_frac + 1/2`` at most ``res_bits + POW2_MAX_EXP + 1``."""
    return f.res_bits + max(POW2_MAX_EXP, 0) + 2 <= 24


def _fq_(v, scale, lo, hi):
    return v.mul_(scale).add_(0.5).floor_().clamp_(lo, hi).div_(scale)


_HALF = torch.tensor(0.5)


class _RPReLUPow2FQ(torch.autograd.Function):
    """``RPReLU._forward_fq`` with ``slopes == "pow2"`` in one autograd node, in float32.

    ``t = fq(x + b0)``; ``neg = sgn(a) * round_half_up(t * |a|)`` on the residual grid (``|a|`` a
    power of two: every step is exact in float32, see :func:`_pow2_exact`); ``y = fq(where(t >=
    0, t, neg) + b1)``, the choice made as ``neg + step(t) * (t - neg)`` (exact: all three
    are on the residual grid). Gradients as the
    reference's straight-through ones: ``dy/dx = dy/db0 = 1 if t >= 0 else a``,
    ``dy/da = t if t < 0 else 0``, ``dy/db1 = 1``.
    """

    @staticmethod
    def forward(ctx, x, b0, a, b1, frac, bits):
        lo, hi = int_range(bits)
        scale = 2.0 ** frac
        t = _fq_(x + b0, scale, lo, hi)
        acol = a.view(1, -1, 1, 1)
        neg = torch.addcmul(_HALF.to(t.dtype), t, acol.abs() * scale).floor_()   # exact
        neg = neg.mul_(torch.where(acol >= 0, 1.0 / scale, -1.0 / scale))
        y = _fq_(torch.addcmul(neg, step(t, 0.0), t - neg).add_(b1), scale, lo, hi)
        ctx.save_for_backward(t, a)
        ctx.shapes = (x.shape, b0.shape, b1.shape)
        return y

    @staticmethod
    def backward(ctx, g):
        t, a = ctx.saved_tensors
        xs, b0s, b1s = ctx.shapes
        pos = step(t, 0.0)
        acol = a.view(1, -1, 1, 1)
        gt = pos.mul(1.0 - acol).add_(acol).mul_(g)      # g * (1 if t >= 0 else a), exact
        ga = None
        if ctx.needs_input_grad[2]:
            ga = pos.sub_(1.0).mul_(g).mul_(t).sum(dim=(0, 2, 3)).neg_()   # sum of g*t, t < 0
        gb0 = gt.sum_to_size(b0s) if ctx.needs_input_grad[1] else None
        gb1 = g.sum_to_size(b1s) if ctx.needs_input_grad[3] else None
        return gt.sum_to_size(xs), gb0, ga, gb1, None, None
