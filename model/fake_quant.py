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

from bincount.model.fixed_point import int_range

__all__ = ["fq_round", "fq_weight", "fq_value"]


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
