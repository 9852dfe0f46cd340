"""Network geometry of the CIFAR-10 ReActNet-18 and Bi-Real-Net-18 (data, no torch).

Both share the ResNet-18 layout of the seed: a real 3x3 stem conv 3 -> 64 at 32x32
(stride 1, no max-pool), four stages of four binary 3x3 convs at 64 / 128 / 256 / 512
channels on 32 / 16 / 8 / 4 maps, average pool and an FC layer to 10 classes. Every binary
conv has its own shortcut (Bi-Real style); stage entries 2..4 have stride 2, take the previous
stage's channels and a downsample shortcut (AvgPool 2x2, real 1x1 conv, BN). The two networks
differ only in the block's activations:

- ReActNet-18: learnable bias -> sign (RSign) -> binary conv -> BN -> + shortcut -> RPReLU
- Bi-Real-Net-18: sign -> binary conv -> BN -> + shortcut
"""

from dataclasses import dataclass

from bincount.errors import BincountError

__all__ = ["ConvSpec", "Network", "STAGES", "NETWORKS", "network_geometry"]

#: (channels, map size) of the four stages.
STAGES = ((64, 32), (128, 16), (256, 8), (512, 4))


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: ``kind`` is ``"real"`` (stem) or ``"binary"``; padding is ``k // 2``."""

    name: str
    kind: str
    cin: int
    cout: int
    k: int
    stride: int
    in_size: int
    stage: int = 0
    downsample: bool = False      # shortcut is AvgPool 2x2 + real 1x1 conv + BN

    @property
    def out_size(self):
        return (self.in_size + 2 * (self.k // 2) - self.k) // self.stride + 1

    @property
    def n(self):
        """Inputs per output: ``k * k * cin``."""
        return self.k * self.k * self.cin

    @property
    def outputs(self):
        """Output elements per image: ``cout * Ho * Wo``."""
        return self.cout * self.out_size * self.out_size


@dataclass(frozen=True)
class Network:
    """A network: its convolutions in order (stem first), block recipe and head."""

    name: str
    title: str
    block: tuple
    layers: tuple
    num_classes: int = 10
    head: str = "global average pool + FC"

    @property
    def stem(self):
        return self.layers[0]

    @property
    def binary_layers(self):
        return tuple(layer for layer in self.layers if layer.kind == "binary")

    @property
    def fc_in(self):
        return self.layers[-1].cout


def _resnet18(name, title, block):
    layers = [ConvSpec("stem", "real", 3, STAGES[0][0], 3, 1, 32)]
    cin, size = STAGES[0][0], 32
    for s, (channels, out_size) in enumerate(STAGES, start=1):
        for i in range(1, 5):
            stride = 2 if (i == 1 and out_size != size) else 1
            layers.append(ConvSpec(f"stage{s}.conv{i}", "binary", cin, channels, 3, stride, size,
                                   stage=s, downsample=(stride != 1 or cin != channels)))
            cin, size = channels, layers[-1].out_size
    return Network(name, title, tuple(block), tuple(layers))


NETWORKS = {
    "reactnet18": _resnet18("reactnet18", "ReActNet-18 (CIFAR-10)",
                            ("learnable bias", "sign", "binary conv", "BN", "+ shortcut",
                             "RPReLU")),
    "birealnet18": _resnet18("birealnet18", "Bi-Real-Net-18 (CIFAR-10)",
                             ("sign", "binary conv", "BN", "+ shortcut")),
}


def network_geometry(name):
    """The :class:`Network` called ``name`` (``reactnet18`` or ``birealnet18``)."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise BincountError(f"unknown network {name!r}; expected one of "
                            f"{', '.join(NETWORKS)}") from None
