"""ReActNet-18 and Bi-Real-Net-18 for CIFAR-10, every variant of the seed, built from the geometry.

API (stable; the training code and the exporter use it)::

    from bincount.model.nets.networks import build_network, convert_to_ptq, VARIANTS, NETWORK_NAMES
    model = build_network("reactnet18", "qat_cn_times_alpha", width_mult=0.25,
                          shortcut="real", slopes="trained", pad_value=1.0)
    logits = model(images)                      # float forward, [B, 10]
    ptq = convert_to_ptq(trained_baseline)      # a copy in the "ptq" variant, not retrained
    same = network_from_config(model.config)    # rebuild (then load_state_dict) from a checkpoint

The layers come from :func:`bincount.model.nets.geometry.network_geometry` (stem, 16 binary 3x3
convs with stride-2 stage entries, head), with every channel count scaled by ``width_mult``
(``max(1, round(c * width_mult))``), so ``bincount ops`` and the networks share one definition.

Flags (``FLAG_DEFAULTS``; each is a flag, not a fork):

- ``pad_value``: padding constant of the binary convs, ``1.0`` (default, bit 1, the hardware's),
  ``-1.0`` or ``0.0`` (float only, not exportable);
- ``shortcut``: downsample shortcut, ``"real"`` (AvgPool 2x2 + 1x1 conv + BN) or ``"concat"``
  (AvgPool 2x2 + channel duplication, multiplier-free);
- ``slopes``: RPReLU slopes (ReActNet only), ``"trained"`` or ``"pow2"`` (powers of two);
- ``division_alpha``: the ``alpha`` inside ``division_num`` for the QAT variants,
  ``"learned"`` (per-layer scalar, default), ``"fixed"`` (hyperparameter) or ``"threshold"``
  (the layer's per-channel count threshold); ``alpha_init``: its initial / fixed value (1.0);
- ``count_bn``: ``"after"`` (default, ``BN(b * delta_c)``, mission.md) or ``"none"``
  (``b * delta_c`` straight into the residual sum, binarized forms only; the reading under which
  the seed's ``division_num`` and simple-QAT numbers can differ, see docs/model.md);
- ``fixed_point``: ``False`` (default) or ``True``: fake-quantise, in training and eval, every
  value the integer export rounds (``bincount.model.layers.fake_quant``), so that the float network and
  its integer export take the same sign decisions (``set_fixed_point`` switches it later).

All variants of one network and width share the same parameter names, so a checkpoint of one
loads into another (``convert_variant``, e.g. QAT fine-tuning from a trained baseline).
"""

import copy
import math

from torch import nn

from bincount.errors import BincountError
from bincount.model.layers.blocks import BinaryBlock
from bincount.model.nets.geometry import NETWORKS, network_geometry
from bincount.model.layers.head import Head
from bincount.model.layers.net_binary_conv import COUNT_BN, PAD_VALUES, NetBinaryConv2d
from bincount.model.layers.rprelu import SLOPE_MODES
from bincount.model.layers.shortcut import SHORTCUT_MODES
from bincount.model.layers.stem import Stem
from bincount.model.nets.variants import DIVISION_ALPHAS, VARIANTS, variant_spec
from bincount.model.layers.fixed_torch import network_forward_fixed
from bincount.model.export.net_format import DEFAULT_FORMAT

__all__ = ["NETWORK_NAMES", "VARIANTS", "FLAG_DEFAULTS", "BinaryResNet", "build_network",
           "network_from_config", "convert_variant", "convert_to_ptq", "scaled_channels",
           "binary_convs"]

NETWORK_NAMES = tuple(NETWORKS)
#: Flags of :func:`build_network` and their defaults.
FLAG_DEFAULTS = {"pad_value": 1.0, "shortcut": "real", "slopes": "trained",
                 "division_alpha": "learned", "alpha_init": 1.0, "count_bn": "after",
                 "fixed_point": False}
_ARCH = {"reactnet18": "reactnet", "birealnet18": "bireal"}


def scaled_channels(c, width_mult):
    """``max(1, round(c * width_mult))``."""
    return max(1, int(round(c * float(width_mult))))


def _check_flags(flags):
    unknown = sorted(set(flags) - set(FLAG_DEFAULTS))
    if unknown:
        raise BincountError(f"unknown network flags {unknown}; expected some of "
                            f"{sorted(FLAG_DEFAULTS)}")
    out = dict(FLAG_DEFAULTS)
    out.update(flags)
    for key in ("pad_value", "alpha_init"):
        try:
            out[key] = float(out[key])
        except (TypeError, ValueError):
            raise BincountError(f"flag {key}={out[key]!r}; expected a number") from None
    if not math.isfinite(out["alpha_init"]) or out["alpha_init"] <= 0:
        raise BincountError(f"flag alpha_init={out['alpha_init']!r}; expected a finite "
                            f"number > 0 (the division alpha's initial value, default 1.0)")
    if not isinstance(out["fixed_point"], (bool, int)):
        raise BincountError(f"flag fixed_point={out['fixed_point']!r}; expected true or false")
    out["fixed_point"] = bool(out["fixed_point"])
    if out["pad_value"] not in PAD_VALUES:
        raise BincountError(f"pad_value {out['pad_value']!r}; expected one of {PAD_VALUES}")
    for key, allowed in (("shortcut", SHORTCUT_MODES), ("slopes", SLOPE_MODES),
                         ("division_alpha", DIVISION_ALPHAS), ("count_bn", COUNT_BN)):
        if out[key] not in allowed:
            raise BincountError(f"{key} {out[key]!r}; expected one of {', '.join(allowed)}")
    return out


class BinaryResNet(nn.Module):
    """Stem, 16 :class:`BinaryBlock` s, head; ``config`` rebuilds it (:func:`network_from_config`)."""

    def __init__(self, network="reactnet18", variant="baseline", width_mult=1.0, num_classes=10,
                 **flags):
        super().__init__()
        if network not in NETWORKS:
            raise BincountError(f"unknown network {network!r}; expected one of "
                                f"{', '.join(NETWORKS)}")
        spec = variant_spec(variant)
        try:
            width_mult = float(width_mult)
        except (TypeError, ValueError):
            raise BincountError(f"width_mult {width_mult!r} is not a number") from None
        if not 0 < width_mult <= 8:
            raise BincountError(f"width_mult {width_mult!r}; expected a number in (0, 8]")
        if int(num_classes) < 1:
            raise BincountError(f"num_classes {num_classes!r}; expected a positive integer")
        flags = _check_flags(flags)
        geo = network_geometry(network)
        self.geometry = geo
        self.config = {"network": network, "variant": variant, "width_mult": width_mult,
                       "num_classes": int(num_classes), **flags}
        self.arch = _ARCH[network]
        stem = geo.stem
        self.stem = Stem(stem.cin, scaled_channels(stem.cout, width_mult), stem.k)
        blocks = []
        for layer in geo.binary_layers:
            blocks.append(BinaryBlock(
                scaled_channels(layer.cin, width_mult), scaled_channels(layer.cout, width_mult),
                layer.stride, arch=self.arch, downsample=layer.downsample,
                shortcut=flags["shortcut"], slopes=flags["slopes"], name=layer.name,
                form=spec.form, delta_uses_scale=spec.delta_uses_scale,
                division_rule=spec.division_rule, division_alpha=flags["division_alpha"],
                alpha_init=flags["alpha_init"], pad_value=flags["pad_value"],
                count_bn=flags["count_bn"]))
        self.blocks = nn.ModuleList(blocks)
        self.head = Head(blocks[-1].out_channels, int(num_classes))
        self.set_fixed_point(flags["fixed_point"])

    def set_fixed_point(self, enabled=True):
        """Switch the fake quantisation of the ``fixed_point`` flag on or off (in place)."""

        fmt = DEFAULT_FORMAT if enabled else None
        for m in self.modules():
            if hasattr(m, "fq") and m is not self:
                m.fq = fmt
        self.config["fixed_point"] = bool(enabled)
        return self

    @property
    def name(self):
        return self.config["network"]

    @property
    def variant(self):
        return self.config["variant"]

    @property
    def layer_names(self):
        """Names of the binary layers (``stage1.conv1`` .. ``stage4.conv4``), as the geometry."""
        return [b.name for b in self.blocks]

    def extra_repr(self):
        c = self.config
        return (f"network={c['network']!r}, variant={c['variant']!r}, "
                f"width_mult={c['width_mult']:g}, shortcut={c['shortcut']!r}, "
                f"slopes={c['slopes']!r}, pad_value={c['pad_value']:g}")

    def features(self, x):
        """The residual stream after the last block, ``[B, C4, 4, 4]``."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x):
        return self.head(self.features(x))

    def forward_fixed(self, x, export=None, tensors=False):
        """The integer (fixed-point) forward of this network, in torch ``int64`` ops.

        ``export``: the whole-network integer export (:func:`bincount.model.export.network_export.
        export_arrays` or ``load_export``; default: exported from this model now). ``x``: the
        normalised images (float ``[B, 3, 32, 32]``, quantised to the input format) or the
        already quantised integer input. Returns the integer logits ``int64 [B, classes]``
        (real value ``/ 2**logit_frac``), or ``(logits, tensors)`` with every layer's
        tensors (names as :func:`bincount.model.export.network_reference.run_reference`).
        """
        return network_forward_fixed(self, x, export, tensors)


def build_network(name, variant="baseline", width_mult=1.0, num_classes=10, **flags):
    """A :class:`BinaryResNet` ``name`` (``reactnet18`` / ``birealnet18``) in ``variant``."""
    return BinaryResNet(name, variant, width_mult, num_classes, **flags)


def network_from_config(config):
    """Rebuild a network from ``model.config`` (e.g. stored in a checkpoint)."""
    if not isinstance(config, dict):
        raise BincountError(f"network config must be a dict, got {type(config).__name__}")
    cfg = dict(config)
    try:
        name = cfg.pop("network")
    except KeyError:
        raise BincountError("network config lacks 'network'") from None
    return build_network(name, **cfg)


def binary_convs(model):
    """The :class:`NetBinaryConv2d` layers of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, NetBinaryConv2d)]


def convert_variant(model, variant, inplace=False):
    """``model`` switched to ``variant`` (a deep copy unless ``inplace``); weights, thresholds,
    BN statistics and every other parameter are kept as they are."""
    spec = variant_spec(variant)
    out = model if inplace else copy.deepcopy(model)
    for conv in binary_convs(out):
        conv.configure(spec.form, spec.delta_uses_scale, spec.division_rule)
    out.config["variant"] = variant
    return out


def convert_to_ptq(model):
    """PTQ-binarized counting of a trained baseline, without retraining (a copy).

    Every binary conv becomes ``BN(b * scale_c * N)`` with ``b = +1 if d >= alpha_c else -1``;
    the BN keeps the baseline's running statistics and affine parameters, the thresholds
    ``alpha_c`` their values (0 after baseline training, which never uses them). This is the
    seed's PTQ; it is expected to collapse to chance accuracy.
    """
    if model.config.get("variant") != "baseline":
        raise BincountError(f"PTQ converts a trained baseline; this model is the "
                            f"{model.config.get('variant')!r} variant")
    return convert_variant(model, "ptq").eval()
