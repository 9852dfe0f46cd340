"""Operation counts from the network geometry (`bincount ops`)."""

import dataclasses
import json

import pytest

import bincount.cli
from bincount.errors import BincountError
from bincount.model.nets import geometry
from bincount.model.nets.geometry import STAGES, network_geometry
from bincount.model.nets.ops import format_table, network_ops


@pytest.fixture
def cli(monkeypatch):
    """``bincount.cli.main``; limited to the model verbs if another verb's module is absent."""
    try:
        bincount.cli.build_parser()
    except ImportError:
        monkeypatch.setattr(bincount.cli, "VERBS", {k: v for k, v in bincount.cli.VERBS.items()
                                                    if k in ("ops", "export-layer")})
    return bincount.cli.main


@pytest.mark.parametrize("name", ["reactnet18", "birealnet18"])
def test_geometry(name):
    net = network_geometry(name)
    assert len(net.layers) == 17 and len(net.binary_layers) == 16
    stem = net.stem
    assert (stem.kind, stem.cin, stem.cout, stem.k, stem.stride, stem.out_size) == (
        "real", 3, 64, 3, 1, 32)
    for s, (channels, size) in enumerate(STAGES, start=1):
        convs = [layer for layer in net.layers if layer.stage == s]
        assert len(convs) == 4
        assert all(c.cout == channels and c.out_size == size and c.k == 3 for c in convs)
        assert convs[0].stride == (1 if s == 1 else 2)
        assert convs[0].downsample == (s != 1)
        assert all(c.stride == 1 and not c.downsample and c.n == 9 * channels for c in convs[1:])
    assert net.fc_in == 512 and net.num_classes == 10


def test_seed_totals():
    for name in ("reactnet18", "birealnet18"):
        result = network_ops(name)
        assert result["totals"] == {"baseline_multiplies": 557056, "binarized_multiplies": 0}
        assert len(result["layers"]) == 17
    # the seed's formula, from the stage table
    assert 1 * 64 * 32 * 32 + sum(4 * c * s * s for c, s in STAGES) == 557056
    assert network_ops("reactnet18", "requantize")["totals"]["binarized_multiplies"] == 65536
    with pytest.raises(BincountError):
        network_ops("reactnet18", "nope")
    with pytest.raises(BincountError, match="unknown network"):
        network_geometry("resnet50")


def test_totals_follow_the_geometry(monkeypatch):
    net = network_geometry("reactnet18")
    layers = list(net.layers)
    layers[-1] = dataclasses.replace(layers[-1], cout=1024)          # widen the last conv
    monkeypatch.setitem(geometry.NETWORKS, "reactnet18",
                        dataclasses.replace(net, layers=tuple(layers)))
    assert network_ops("reactnet18")["totals"]["baseline_multiplies"] == 557056 + 512 * 16


def test_cli_json(cli, capsys):
    assert cli(["ops", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["network"] == "reactnet18"
    assert result["totals"] == {"baseline_multiplies": 557056, "binarized_multiplies": 0}
    for row in result["layers"]:
        assert set(row) == {"name", "outputs", "baseline_multiplies", "binarized_multiplies"}
    assert sum(r["baseline_multiplies"] for r in result["layers"]) == 557056
    assert result["layers"][0] == {"name": "stem", "outputs": 65536,
                                   "baseline_multiplies": 65536, "binarized_multiplies": 0}
    assert cli(["ops", "--json", "--network", "birealnet18"]) == 0
    assert json.loads(capsys.readouterr().out)["network"] == "birealnet18"


def test_cli_table(cli, capsys):
    assert cli(["ops"]) == 0
    out = capsys.readouterr().out
    assert "557,056" in out and "stage4.conv4" in out and "stem" in out
    assert out.strip() == format_table(network_ops("reactnet18")).strip()


def test_cli_unknown_network(cli, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["ops", "--network", "resnet50"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "reactnet18" in err
