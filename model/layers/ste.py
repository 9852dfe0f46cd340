"""Straight-through estimators (functional core of the binary layers).

Both functions return exact +-1 values in the forward pass: the gradient path is added as
``hard + (soft - soft.detach())``, and ``soft - soft.detach()`` is exactly 0 for finite values.
"""

import torch

__all__ = ["sign_ste", "count_ste", "sign_ste_fused", "count_ste_fused"]


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


# -- fused autograd functions (the training path, bincount.model.layers.fastpath) ------------------
#
# Same forward values and the same gradients as the expressions above (up to the order of float
# sums), in a few vectorised passes each way. They avoid ``torch.where`` and boolean masks
# (whose CPU kernels are an order of magnitude slower than arithmetic): a comparison writes
# 0.0 / 1.0 straight into a float tensor, and the clipped gradient is ``hardtanh_backward``
# with the bounds moved to the next float, so that ``|t| <= 1`` stays inclusive as in
# ``clamp``'s gradient.

#: The float32 just above 1: ``|t| < ONE_UP`` is ``|t| <= 1`` for every float32 ``t``.
ONE_UP = 1.0 + 2.0 ** -23


def step(a, b):
    """``1.0 where a >= b else 0.0``, float, the shape and memory format of ``a``."""
    return torch.ge(a, b, out=torch.empty_like(a))


def clipped_grad(g, t):
    """``g where |t| <= 1 else 0`` (the gradient of ``clamp(t, -1, 1)``)."""
    return torch.ops.aten.hardtanh_backward(g, t, -ONE_UP, ONE_UP)


class _SignSTE(torch.autograd.Function):
    """``sign(x + bias) - offset`` (``bias`` optional), gradient ``1{|x + bias| <= 1}``."""

    @staticmethod
    def forward(ctx, x, bias, offset):
        t = x if bias is None else x + bias
        ctx.save_for_backward(t)
        ctx.bias_shape = None if bias is None else bias.shape
        return step(t, 0.0).mul_(2.0).sub_(1.0 + offset)      # exact: {0, 1} -> {-1, 1} - offset

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        gx = clipped_grad(g, t)
        gb = None
        if ctx.bias_shape is not None and ctx.needs_input_grad[1]:
            gb = gx.sum_to_size(ctx.bias_shape)
        return gx, gb, None


def sign_ste_fused(x, bias=None, offset=0.0):
    """``sign_ste(x + bias) - offset`` in one autograd node (``bias`` broadcast against ``x``).

    ``offset`` is subtracted from the exact +-1 (``offset = pad_value`` gives the input of a
    zero-padded convolution that equals a ``pad_value``-padded one plus a bias, see
    :meth:`bincount.model.layers.net_binary_conv.NetBinaryConv2d.forward_fast`). Gradient as
    :func:`sign_ste` of ``x + bias``, for ``x`` and (summed) ``bias``.
    """
    return _SignSTE.apply(x, bias, float(offset))


class _CountSTE(torch.autograd.Function):
    """``+-delta`` by ``d >= alpha``; backward as ``count_ste(d, alpha, n) * delta``.

    ``d >= alpha`` is taken as ``d - alpha >= 0``, the same for all finite floats (IEEE
    subtraction of two different floats is never zero, and ``-0.0 >= 0``), so that the
    comparison is against a scalar.
    """

    @staticmethod
    def forward(ctx, d, alpha, delta, n):
        u = d - alpha
        b = step(u, 0.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(u, b, delta)
        ctx.alpha_shape = alpha.shape
        ctx.n = float(n)
        return b * delta

    @staticmethod
    def backward(ctx, g):
        u, b, delta = ctx.saved_tensors
        n = ctx.n
        need_d, need_alpha, need_delta, _ = ctx.needs_input_grad
        gd = galpha = gdelta = None
        if need_d or need_alpha:
            gd = clipped_grad(g * delta, u / n).div_(n)   # soft = clamp((d - alpha) / n, -1, 1)
            if need_alpha:
                galpha = gd.sum_to_size(ctx.alpha_shape).neg()
        if need_delta:
            gdelta = (g * b).sum_to_size(delta.shape)
        return gd, galpha, gdelta, None


def count_ste_fused(d, alpha, delta, n):
    """``count_ste(d, alpha, n) * delta`` in one autograd node: forward ``+-delta`` by
    ``d >= alpha`` (exact), gradients for ``d``, ``alpha`` and ``delta`` as the product's."""
    return _CountSTE.apply(d, alpha, delta, n)
