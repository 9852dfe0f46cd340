"""``NetBinaryConv2d``: the :class:`BinaryConv2d` of the networks, with variant and padding flags.

It adds to :class:`bincount.model.layers.binary_conv.BinaryConv2d` (whose forward, STE and BN it
keeps):

- ``pad_value``: the constant the binary input is padded with, ``+1`` (default, bit 1, what the
  hardware does), ``-1`` (bit 0) or ``0`` (zero padding as in float reference code; N then
  differs at the border, so such a layer is not exportable);
- the ``division_num`` rules of the seed (:mod:`bincount.model.nets.variants`):
  ``delta_c = (scale_c if delta_uses_scale else 1) * N / division_num_c`` with
  ``division_num_c`` from ``division_rule`` and the ``alpha`` reading ``division_alpha``;
- ``count_bn``: in the binarized form, ``"after"`` (default): ``y = BN(b * delta_c)`` as
  ``BinaryConv2d``; ``"none"``: ``y = b * delta_c``, no BN on the binarized count (the BN module
  stays, unused, so state dicts match). The baseline form always has its BN.

Every instance holds the scalar parameter ``div_alpha`` whatever its variant (trainable only
for ``division_alpha == "learned"``), so one state dict loads into every variant of a network.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bincount.errors import BincountError
from bincount.model.layers import fastpath
from bincount.model.layers.binary_conv import FORMS, BinaryConv2d
from bincount.model.layers.ste import count_ste_fused, sign_ste, sign_ste_fused
from bincount.model.nets.variants import (DIVISION_ALPHAS, DIVISION_RULES, MIN_DIVISION,
                                     division_base)

__all__ = ["NetBinaryConv2d", "PAD_VALUES", "COUNT_BN"]

#: Allowed padding constants of the binary input (``0`` is float-only).
PAD_VALUES = (1.0, -1.0, 0.0)
#: Where the binarized count meets a BN.
COUNT_BN = ("after", "none")


def _np64(t):
    return t.detach().cpu().double().numpy()


class NetBinaryConv2d(BinaryConv2d):
    """Binary 3x3 conv + BN of a network block (see the module docstring)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, form="baseline",
                 delta_uses_scale=True, division_rule="one", division_alpha="learned",
                 alpha_init=1.0, pad_value=1.0, count_bn="after", bn_eps=1e-5, bn_momentum=0.1):
        super().__init__(in_channels, out_channels, kernel_size, stride, form=form,
                         division_num=1.0, delta_uses_scale=delta_uses_scale, bn_eps=bn_eps,
                         bn_momentum=bn_momentum)
        if float(pad_value) not in PAD_VALUES:
            raise BincountError(f"pad_value must be one of {PAD_VALUES}, got {pad_value!r}")
        self.pad_value = float(pad_value)
        if count_bn not in COUNT_BN:
            raise BincountError(f"count_bn must be one of {COUNT_BN}, got {count_bn!r}")
        self.count_bn = count_bn
        self.div_alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.configure(form, delta_uses_scale, division_rule, division_alpha)

    def configure(self, form, delta_uses_scale, division_rule, division_alpha=None):
        """Switch the variant in place (weights, thresholds and BN are kept)."""
        if form not in FORMS:
            raise BincountError(f"form must be one of {FORMS}, got {form!r}")
        if division_rule not in DIVISION_RULES:
            raise BincountError(f"unknown division rule {division_rule!r}; expected one of "
                                f"{', '.join(DIVISION_RULES)}")
        division_alpha = division_alpha or getattr(self, "division_alpha", "learned")
        if division_alpha not in DIVISION_ALPHAS:
            raise BincountError(f"unknown division alpha {division_alpha!r}; expected one of "
                                f"{', '.join(DIVISION_ALPHAS)}")
        self.form = form
        self.delta_uses_scale = bool(delta_uses_scale)
        self.division_rule = division_rule
        self.division_alpha = division_alpha
        base, op = division_base(division_rule, self.in_channels, self.kernel_size)
        self.division_num = base          # informative (the base, without alpha)
        self.div_alpha.requires_grad_(division_alpha == "learned" and op is not None)
        return self

    def extra_repr(self):
        return (super().extra_repr() + f", rule={self.division_rule!r}, "
                f"alpha={self.division_alpha!r}, pad_value={self.pad_value:g}, "
                f"count_bn={self.count_bn!r}")

    def division(self):
        """``division_num`` as a tensor (scalar, or ``[Cout]`` for the threshold reading)."""
        base, op = division_base(self.division_rule, self.in_channels, self.kernel_size)
        if op is None:
            return torch.tensor(base, dtype=self.alpha.dtype, device=self.alpha.device)
        a = self.alpha if self.division_alpha == "threshold" else self.div_alpha
        num = base + a if op == "+" else base * a
        return torch.clamp(num, min=MIN_DIVISION)

    def delta(self):
        """``delta_c = (scale_c if delta_uses_scale else 1) * N / division_num_c`` (``[Cout]``)."""
        base = self.scale() if self.delta_uses_scale else torch.ones_like(self.alpha.detach())
        return base * self.n / self.division()

    @property
    def uses_bn(self):
        """Whether the output passes the BN (always for the baseline form)."""
        return self.form == "baseline" or self.count_bn == "after"

    def forward(self, x):
        if fastpath.enabled():
            return self.forward_fast(x)
        v = self.pre_bn(x)
        return self.bn(v) if self.uses_bn else v

    def forward_fast(self, x, bias=None):
        """``forward(sign(x + bias))`` on the fused path (:mod:`bincount.model.layers.fastpath`).

        The ``pad_value``-padded convolution of the +-1 input is computed as a zero-padded one
        of ``sign(x + bias) - pad_value`` plus the bias ``pad_value * sum(sign(W_c))`` (the
        padded taps each add ``pad_value * w``), so the padding happens inside the convolution
        kernel and no padded copy is made. All terms are integers below 2**24: ``d`` is the
        same exact integer as :meth:`dot`'s, and its round guard is not needed. Real-valued
        weights (step 1 of the two-step schedule, ``binary_weights`` false) use ``W`` itself.
        Under autocast the convolution runs in float32 (its sums are exact only there).
        """
        pv = self.pad_value
        xm = sign_ste_fused(x, bias, pv)
        w = sign_ste_fused(self.weight) if self.binary_weights else self.weight
        cb = w.sum(dim=(1, 2, 3)) * pv if pv != 0.0 else None
        if torch.is_autocast_enabled(xm.device.type):
            with torch.autocast(xm.device.type, enabled=False):
                d = F.conv2d(xm, w, cb, self.stride, self.padding)
        else:
            d = F.conv2d(xm, w, cb, self.stride, self.padding)
        if self.form == "baseline":
            v = d * self.scale().view(1, -1, 1, 1)
        else:
            v = count_ste_fused(d, self.alpha.view(1, -1, 1, 1), self.delta().view(1, -1, 1, 1),
                                self.n)
        return self.bn(v) if self.uses_bn else v

    def bn_stats(self):
        """``(gamma, beta, mean, var, eps)`` float64 of the map after the count (identity
        without BN)."""
        c = self.out_channels
        if not self.uses_bn:
            return np.ones(c), np.zeros(c), np.zeros(c), np.ones(c), 0.0
        return super().bn_stats()

    def dot(self, x):
        """``d`` of the ``pad_value``-padded binary input (exact integers for +-1 padding)."""
        return super().dot(x, self.pad_value)

    @property
    def pad_bit(self):
        """The padding as a bit (1 for +1, 0 for -1); :class:`BincountError` for 0."""
        if self.pad_value == 0.0:
            raise BincountError("a binary conv padded with 0 has no integer form (N would differ "
                                "at the border); use pad_value +1 or -1")
        return 1 if self.pad_value > 0 else 0

    def export_delta(self):
        """This layer's ``delta_c`` (from its division rule), float64."""
        with torch.no_grad():
            return _np64(self.delta())
