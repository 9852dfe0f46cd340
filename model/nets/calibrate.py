"""Random-but-calibrated networks (for tests, agreement checks and benchmarks; nothing trained).

:func:`calibrate_random` draws every parameter that training would set (RSign biases, RPReLU
biases and slopes, BN affine parameters with some negative binary-layer gammas) from a seed,
then runs the images once in training mode so that every BN's running statistics are the batch
statistics of its real input, and every binary conv's count threshold ``alpha_c`` is the
``q_c``-quantile (``q_c`` uniform in [0.3, 0.7]) of its own ``d`` (binarized variants).
"""

import torch
from torch import nn

from bincount.model.layers.net_binary_conv import NetBinaryConv2d
from bincount.model.nets.networks import build_network

__all__ = ["calibrate_random", "synthetic_images", "calibrated_network"]


def synthetic_images(count, seed=0):
    """``float32 [count, 3, 32, 32]`` smooth random images in the normalised CIFAR-10 range."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(count, 3, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False)
    x = x + 0.3 * torch.randn(count, 3, 32, 32, generator=g)
    return torch.clamp(x, -1.99, 2.12).float()


@torch.no_grad()
def calibrate_random(model, images, seed=0):
    """Randomise ``model``'s untrained parameters from ``seed`` and calibrate it on ``images``.

    Returns ``model`` in eval mode. ``images``: normalised float ``[B, 3, 32, 32]``.
    """
    g = torch.Generator().manual_seed(seed)

    def uni(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(uni(m.weight.shape, 0.5, 1.5))
            m.bias.copy_(uni(m.bias.shape, -0.25, 0.25))
        if isinstance(m, NetBinaryConv2d):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.05)
    for m in model.modules():                    # after the BN loop, which visits conv.bn later
        if isinstance(m, NetBinaryConv2d):
            m.bn.weight[3::4] *= -1.0            # negative BN scales: hi < lo, M < 0
    for block in model.blocks:
        if block.rsign is not None:
            block.rsign.shift.bias.copy_(uni(block.rsign.shift.bias.shape, -0.2, 0.2))
        if block.rprelu is not None:
            r = block.rprelu
            r.bias0.copy_(uni(r.bias0.shape, -0.2, 0.2))
            r.bias1.copy_(uni(r.bias1.shape, -0.2, 0.2))
            r.slope.copy_(uni(r.slope.shape, 0.05, 0.6))
    quantiles = {}
    hooks = []
    for conv in (m for m in model.modules() if isinstance(m, NetBinaryConv2d)):
        quantiles[conv] = uni((conv.out_channels,), 0.3, 0.7)

        def pre(mod, args):
            if mod.form == "binarized":
                mod.calibrate_alpha(args[0], quantiles[mod])
        hooks.append(conv.register_forward_pre_hook(pre))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average: one batch = its statistics
    model.train()
    try:
        model(torch.as_tensor(images, dtype=torch.float32))
    finally:
        for h in hooks:
            h.remove()
        for m, mom in zip(bns, saved):
            m.momentum = mom
    return model.eval()


def calibrated_network(name, variant="baseline", width_mult=0.125, seed=0, images=None,
                       count=32, **flags):
    """A :func:`build_network` network, randomised and calibrated by :func:`calibrate_random`
    on ``images`` (default: ``count`` :func:`synthetic_images` of ``seed``). Returns
    ``(model, images)``."""

    torch.manual_seed(seed)
    model = build_network(name, variant, width_mult, **flags)
    if images is None:
        images = synthetic_images(count, seed)
    return calibrate_random(model, images, seed), images
