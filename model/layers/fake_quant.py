"""Fake quantisation onto the integer export's grid (the ``fixed_point=True`` network flag).

With the flag, the float forward (training and eval) rounds every value where the integer
network rounds (docs/conventions.md "Whole network"): the input image, the real convs' weights,
the residual stream and each tensor added to it, the RSign and RPReLU biases and slopes. The
gradient passes straight through every rounding and saturation. A network trained this way
takes, in float, the same sign decisions as its integer export except where a value lies within
float rounding error of a rounding boundary, so top-1 agreement no longer depends on how
sensitive the network is to tiny perturbations (see docs/model.md "Agreement").
"""

import torch

from bincount.model.export.fixed_point import int_range

__all__ = ["fq_round", "fq_weight", "fq_value", "fq_round_fused", "fq_value_fused",
           "fq_add_fused"]


def fq_round(x, frac, bits):
    """``sat(floor(x * 2**frac + 1/2)) / 2**frac`` with a straight-through gradient."""
    lo, hi = int_range(bits)
    scale = 2.0 ** frac
    q = torch.clamp(torch.floor(x.detach() * scale + 0.5), lo, hi) / scale
    return x + (q - x).detach()


def fq_value(x, fmt):
    """A residual-format value (``res_bits``, ``res_frac``)."""
    return fq_round(x, fmt.res_frac, fmt.res_bits)


def fq_weight(w, bits):
    """Per-output-channel symmetric weight quantisation (as the export's ``quantize_weights``)."""
    flat = w.detach().reshape(w.shape[0], -1)
    m = flat.abs().max(dim=1).values
    s = torch.where(m > 0, m / float((1 << (bits - 1)) - 1), torch.ones_like(m))
    s = s.view((-1,) + (1,) * (w.dim() - 1))
    lo, hi = int_range(bits)
    q = torch.clamp(torch.floor(w.detach() / s + 0.5), lo, hi) * s
    return w + (q - w).detach()


# -- fused autograd functions (the training path, bincount.model.layers.fastpath) ------------------

def _fq_(v, scale, lo, hi):
    """``sat(floor(v + 1/2)) / scale`` in place on the new tensor ``v`` (already scaled)."""
    return v.add_(0.5).floor_().clamp_(lo, hi).div_(scale)


def _scaled_half(x, scale):
    """``x * scale + 1/2`` in one pass (``x * scale`` is exact: ``scale`` is a power of two)."""
    return torch.add(_HALF.to(x.dtype), x, alpha=scale)


_HALF = torch.tensor(0.5)


class _FakeQuant(torch.autograd.Function):
    """``fq_round(x, frac, bits)`` (or ``fq_round(fq_round(x) + y)`` with ``y``), gradient 1."""

    @staticmethod
    def forward(ctx, x, y, frac, bits):
        lo, hi = int_range(bits)
        scale = 2.0 ** frac
        q = _scaled_half(x, scale).floor_().clamp_(lo, hi).div_(scale)
        if y is not None:
            q = q.add_(y) if torch.broadcast_shapes(q.shape, y.shape) == q.shape else q + y
            q = _fq_(q.mul_(scale), scale, lo, hi)
        ctx.x_shape = x.shape
        ctx.y_shape = None if y is None else y.shape
        return q

    @staticmethod
    def backward(ctx, g):
        gy = None
        if ctx.y_shape is not None and ctx.needs_input_grad[1]:
            gy = g.sum_to_size(ctx.y_shape)
        return g.sum_to_size(ctx.x_shape), gy, None, None


def fq_round_fused(x, frac, bits):
    """:func:`fq_round` in one autograd node (four in-place passes, an identity backward).

    Returns the rounded value itself; :func:`fq_round` returns ``x + (q - x)``, which is the
    same float wherever ``x`` is not saturated (``q - x`` is then exact) and may differ from
    ``q`` by float rounding where it is.
    """
    return _FakeQuant.apply(x, None, int(frac), int(bits))


def fq_value_fused(x, fmt):
    """:func:`fq_value` in one autograd node."""
    return _FakeQuant.apply(x, None, fmt.res_frac, fmt.res_bits)


def fq_add_fused(x, y, fmt):
    """``fq_value(fq_value(x) + y)`` in one autograd node (gradient 1 to ``x`` and ``y``)."""
    return _FakeQuant.apply(x, y, fmt.res_frac, fmt.res_bits)
