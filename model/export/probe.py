"""A real, calibrated binary conv layer fed by real CIFAR-10 images (for golden vectors).

Nothing here is trained; everything is drawn from one fixed seed and every BatchNorm is
calibrated on real CIFAR-10 test images (JPEG copy), so the bits, counts and BN statistics
have the distributions of a real network's layer rather than of random data.

Probe front end (gives real-valued inputs of ``Cin`` channels at the stage's map size):

1. ``images`` test images (indices drawn from the seed among the bundled sample's, see
   :func:`bincount.model.data.cifar.sample_indices`), normalised with the CIFAR-10 mean / std.
2. Stem: real 3x3 conv 3 -> 64 (stride 1, padding 1, He-normal weights) + BN calibrated on
   those images (batch mean / variance, gamma 1, beta 0): 64 channels at 32x32.
3. ``Cin = 64``: the stem output. ``Cin = 128 / 256 / 512``: a real 1x1 conv 64 -> Cin
   (He-normal), average pooling 2x2 / 4x4 / 8x8 down to 16x16 / 8x8 / 4x4 (the stage's
   map), then BN calibrated the same way.

Layer (:func:`calibrated_layer`): ``BinaryConv2d(Cin, Cout, 3, stride 1)``, He-normal weights,
then on the probe inputs:

- ``alpha_c`` = the ``q_c``-quantile of d of channel c, ``q_c`` uniform in [0.3, 0.7], so that
  thresholds sit inside the count distribution (``b`` roughly balanced);
- BN running mean / variance = statistics of the baseline BN input ``scale_c * d`` (what a
  trained baseline ReActNet layer holds);
- BN gamma: magnitude uniform in [0.5, 1.5], **negative for every channel c with c % 4 == 3**
  (deliberate, so that negative BN scales, hence ``hi < lo`` and ``M < 0``, are exercised);
  beta uniform in [-0.25, 0.25].

The layer is returned in the ``"binarized"`` form with ``delta_c = scale_c * N`` (division_num
1, the seed's PTQ reading); its exported baseline constants come from the same BN.
"""

import numpy as np
import torch
import torch.nn.functional as F

from bincount.errors import BincountError
from bincount.model.layers.binary_conv import BinaryConv2d
from bincount.model.data.cifar import load_test_images, normalize, sample_indices

__all__ = ["STAGE_MAP", "probe_image_indices", "probe_inputs", "calibrated_layer",
           "NEGATIVE_GAMMA_EVERY"]

#: ReActNet-18 stage width (Cin) -> feature map size.
STAGE_MAP = {64: 32, 128: 16, 256: 8, 512: 4}
#: Channels with ``c % NEGATIVE_GAMMA_EVERY == NEGATIVE_GAMMA_EVERY - 1`` get a negative gamma.
NEGATIVE_GAMMA_EVERY = 4


def _check_cin(cin):
    if cin not in STAGE_MAP:
        raise BincountError(f"--cin {cin!r} is not a ReActNet-18 stage width; "
                            f"expected one of {sorted(STAGE_MAP)}")


def probe_image_indices(seed, images):
    """The test-set indices used for seed ``seed``: ``images`` distinct ones of the bundled
    sample's, sorted."""
    pool = sample_indices()
    if not 1 <= int(images) <= len(pool):
        raise BincountError(f"probe images {images!r}; expected 1..{len(pool)}")
    rng = np.random.default_rng([int(seed), 7919])
    return sorted(pool[int(i)] for i in rng.choice(len(pool), size=int(images), replace=False))


def _he(gen, shape):
    fan_in = int(np.prod(shape[1:]))
    return torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5


def _standardize(z):
    """BN calibrated on the batch itself (gamma 1, beta 0, eps 1e-5)."""
    mean = z.mean(dim=(0, 2, 3), keepdim=True)
    var = z.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + 1e-5)


@torch.no_grad()
def probe_inputs(cin, seed=0, images=8, data_dir=None):
    """Real-valued inputs ``float32 [images, cin, S, S]`` (S = stage map) and an info dict."""
    _check_cin(cin)
    indices = probe_image_indices(seed, images)
    pix, labels = load_test_images(indices=indices, data_dir=data_dir)
    x = torch.from_numpy(normalize(pix))
    gen = torch.Generator().manual_seed(int(seed) * 1000003 + 17)
    z = _standardize(F.conv2d(x, _he(gen, (64, 3, 3, 3)), padding=1))
    size = STAGE_MAP[cin]
    if cin != 64:
        z = F.conv2d(z, _he(gen, (cin, 64, 1, 1)))
        z = _standardize(F.avg_pool2d(z, 32 // size))
    info = {"images": indices, "labels": [int(v) for v in labels],
            "dataset": "CIFAR-10 test (JPEG copy)",
            "probe": (f"stem conv3x3 3->64 + BN(calibrated)"
                      + ("" if cin == 64 else f", conv1x1 64->{cin}, avgpool {32 // size}x"
                         f"{32 // size}, BN(calibrated)") + f"; map {size}x{size}")}
    return z.contiguous(), info


@torch.no_grad()
def calibrated_layer(cin, cout=None, seed=0, images=8, data_dir=None):
    """``(layer, x, info)``: a calibrated ``BinaryConv2d`` (eval mode) and its probe inputs."""
    cout = cin if cout is None else int(cout)
    if cout < 1:
        raise BincountError(f"cout must be a positive integer, got {cout!r}")
    x, info = probe_inputs(cin, seed, images, data_dir)
    torch.manual_seed(int(seed))        # BinaryConv2d's own init; overwritten just below
    layer = BinaryConv2d(cin, cout, kernel_size=3, stride=1, form="baseline")
    gen = torch.Generator().manual_seed(int(seed) * 1000003 + 29)
    layer.weight.copy_(_he(gen, tuple(layer.weight.shape)))
    layer.calibrate_alpha(x, quantile=0.3 + 0.4 * torch.rand(cout, generator=gen))
    layer.calibrate_bn(x, form="baseline")
    mag = 0.5 + torch.rand(cout, generator=gen)
    neg = (torch.arange(cout) % NEGATIVE_GAMMA_EVERY) == NEGATIVE_GAMMA_EVERY - 1
    layer.bn.weight.copy_(torch.where(neg, -mag, mag))
    layer.bn.bias.copy_(0.5 * torch.rand(cout, generator=gen) - 0.25)
    layer.form = "binarized"
    layer.eval()
    info.update({"calibration": "alpha_c = q_c-quantile of d, q_c ~ U[0.3, 0.7]; BN stats of "
                                "scale_c*d (baseline form); gamma magnitude U[0.5, 1.5], "
                                f"negative where c % {NEGATIVE_GAMMA_EVERY} == "
                                f"{NEGATIVE_GAMMA_EVERY - 1}; beta U[-0.25, 0.25]",
                 "negative_gamma_channels": [int(c) for c in torch.nonzero(neg).flatten()]})
    return layer, x, info
