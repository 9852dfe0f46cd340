"""Straight-through estimators (functional core of the binary layers).

Both functions return exact +-1 values in the forward pass: the gradient path is added as
``hard + (soft - soft.detach())``, and ``soft - soft.detach()`` is exactly 0 for finite values.
"""

import torch

__all__ = ["sign_ste", "count_ste"]


def sign_ste(x):
    """``+1 if x >= 0 else -1`` (sign(0) = +1) with the clipped straight-through gradient.

    Forward: ``s = where(x >= 0, 1, -1)``. Backward: ``ds/dx = 1 if |x| <= 1 else 0``
    (larq's ``ste_sign``; the gradient of ``clamp(x, -1, 1)``).
    """
    hard = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    soft = torch.clamp(x, -1.0, 1.0)
    return hard + (soft - soft.detach())


def count_ste(d, alpha, n):
    """Binarized count ``b = +1 if d >= alpha else -1`` with a straight-through gradient.

    ``d`` is the binary dot product ``2*count - N`` (exact integers in float), ``alpha`` the
    per-channel threshold (broadcast against ``d``), ``n`` = N. Forward compares ``d >= alpha``
    exactly. Backward treats ``b`` as ``clamp((d - alpha) / N, -1, 1)``:
    ``db/dd = -db/dalpha = 1/N if |d - alpha| <= N else 0``.
    """
    hard = torch.where(d >= alpha, torch.ones_like(d), -torch.ones_like(d))
    soft = torch.clamp((d - alpha) / float(n), -1.0, 1.0)
    return hard + (soft - soft.detach())
