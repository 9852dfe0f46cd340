"""The bincount-layer .npz: round trip, validation of bad files, export-layer on the CLI."""

import json
import zipfile

import numpy as np
import pytest
import torch

import bincount.cli
from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.layers.binary_conv import BinaryConv2d
from bincount.model.data.cifar import ENV_VAR
from bincount.model.export.layer_export import KEYS, export_layer, load_layer

MODEL_VERBS = ("ops", "export-layer")


@pytest.fixture
def cli(monkeypatch):
    """``bincount.cli.main``; limited to the model verbs if another verb's module is absent."""
    try:
        bincount.cli.build_parser()
    except ImportError:
        monkeypatch.setattr(bincount.cli, "VERBS",
                            {k: v for k, v in bincount.cli.VERBS.items() if k in MODEL_VERBS})
    return bincount.cli.main





def make_layer(cin=5, cout=6, stride=1, seed=0):
    torch.manual_seed(seed)
    layer = BinaryConv2d(cin, cout, 3, stride, form="binarized")
    x = torch.randn(2, cin, 7, 7)
    with torch.no_grad():
        layer.calibrate_alpha(x, 0.4)
        layer.calibrate_bn(x, "baseline")
        layer.bn.weight.uniform_(-1.5, 1.5)
    return layer.eval(), x


@pytest.fixture
def layer_file(tmp_path):
    layer, x = make_layer()
    path = tmp_path / "layer.npz"
    export_layer(layer, path, meta={"name": "t", "seed": 0, "source": "random"})
    return path, layer, x


def test_roundtrip(layer_file):
    path, layer, x = layer_file
    data = load_layer(path)
    params = layer.fixed_params()
    for key in ("weight_bits", "threshold", "hi", "lo", "mul", "offset"):
        assert np.array_equal(data[key], params[key])
    assert int(data["shift"]) == int(params["shift"])
    assert data["weight_bits"].dtype == np.uint8 and data["weight_bits"].shape == (6, 6)
    for key in ("threshold", "hi", "lo", "mul", "offset", "shift"):
        assert data[key].dtype == np.int64
    meta = data["meta"]
    for field in ("name", "cin", "cout", "k", "stride", "n", "out_bits", "out_frac", "mul_bits",
                  "off_bits", "shift", "seed", "source", "bit_order"):
        assert field in meta, field
    assert (meta["format"], meta["version"], meta["n"], meta["name"]) == (
        "bincount-layer", 1, 45, "t")
    # the loaded file drives both integer implementations to the same result
    count, yb, yl = fp.reference_layer((x >= 0).numpy().astype(np.uint8), data)
    t_count, t_bin, t_base = layer.fixed_outputs(x, data)
    assert np.array_equal(count, t_count.numpy())
    assert np.array_equal(yb, t_bin.numpy()) and np.array_equal(yl, t_base.numpy())


def test_stride_two_roundtrip(tmp_path):
    layer, x = make_layer(cin=4, cout=3, stride=2, seed=3)
    export_layer(layer, tmp_path / "s2.npz")
    data = load_layer(tmp_path / "s2.npz")
    assert data["meta"]["stride"] == 2
    count, _, yl = fp.reference_layer((x >= 0).numpy().astype(np.uint8), data)
    assert count.shape == (2, 3, 4, 4)
    assert np.array_equal(yl, layer.fixed_outputs(x, data)[2].numpy())


def rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    np.savez(out, **data)
    return out


def meta_with(path, **fields):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta_json"]))
    meta.update(fields)
    return np.array(json.dumps(meta))


def test_missing_file(tmp_path):
    with pytest.raises(BincountError, match="does not exist"):
        load_layer(tmp_path / "nope.npz")


def test_corrupt_files(tmp_path, layer_file):
    path = layer_file[0]
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(BincountError, match="not a readable .npz"):
        load_layer(garbage)
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BincountError, match="not a readable .npz"):
        load_layer(truncated)
    bad_member = tmp_path / "member.npz"
    with zipfile.ZipFile(bad_member, "w") as z:
        for key in KEYS:
            z.writestr(f"{key}.npy", b"\x93NUMPY garbage")
    with pytest.raises(BincountError, match="not a readable .npz"):
        load_layer(bad_member)


@pytest.mark.parametrize("change, message", [
    ({"threshold": None}, "lacks arrays"),
    ({"extra": np.zeros(3)}, "unknown arrays"),
    ({"threshold": np.zeros(6, np.int32)}, "expected int64"),
    ({"hi": np.zeros(5, np.int64)}, r"expected int64 \(6,\)"),
    ({"weight_bits": np.zeros((6, 6), np.int64)}, "expected uint8"),
    ({"weight_bits": np.zeros((6, 5), np.uint8)}, "expected uint8"),
    ({"weight_bits": np.full((6, 6), 0xFF, np.uint8)}, "beyond N"),
    ({"shift": np.array([3], np.int64)}, "int64 scalar"),
    ({"threshold": np.array([0, 1, 2, 3, 46, 47], np.int64)},
     r"threshold\[5\] = 47 is outside 0..46"),
    ({"threshold": np.array([-1, 1, 2, 3, 4, 5], np.int64)}, r"threshold\[0\] = -1"),
    ({"hi": np.full(6, 40000, np.int64)}, "16-bit signed outputs"),
    ({"mul": np.full(6, 1 << 17, np.int64)}, "18-bit signed multipliers"),
    ({"meta_json": np.array("{not json")}, "not valid JSON"),
    ({"meta_json": np.array(3)}, "scalar string"),
])
def test_bad_contents(tmp_path, layer_file, change, message):
    bad = rewrite(layer_file[0], tmp_path / "bad.npz", **change)
    with pytest.raises(BincountError, match=message) as info:
        load_layer(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("fields, message", [
    ({"format": "other"}, "expected 'bincount-layer' version 1"),
    ({"version": 2}, "expected 'bincount-layer' version 1"),
    ({"n": 44}, "expected n = k\\*k\\*cin"),
    ({"cin": "five"}, "expected an integer"),
    ({"shift": 3}, "meta_json says 3"),
    ({"k": 2, "n": 20}, "odd k"),
])
def test_bad_meta(tmp_path, layer_file, fields, message):
    path = layer_file[0]
    bad = rewrite(path, tmp_path / "bad.npz", meta_json=meta_with(path, **fields))
    with pytest.raises(BincountError, match=message):
        load_layer(bad)


def test_export_to_unwritable_place_leaves_nothing(tmp_path):
    layer, _ = make_layer()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BincountError, match="cannot create output directory"):
        export_layer(layer, blocker / "sub" / "layer.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# -- the command line -----------------------------------------------------------------------

def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    return err


def test_cli_bad_cin(cli, capsys, tmp_path):
    out = tmp_path / "l.npz"
    assert cli(["export-layer", "--cin", "100", "-o", str(out)]) != 0
    assert "64, 128, 256, 512" in one_line_error(capsys)
    assert not out.exists()


def test_cli_unwritable_output(cli, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "layers" / "l.npz"
    assert cli(["export-layer", "--cin", "64", "-o", str(out)]) == 2
    assert "cannot create output directory" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cli_missing_data_writes_nothing(cli, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "no-data"))
    out, vec = tmp_path / "out" / "l.npz", tmp_path / "out" / "v.npz"
    assert cli(["export-layer", "--cin", "64", "-o", str(out), "--vectors", str(vec)]) == 2
    assert ENV_VAR in one_line_error(capsys)
    assert not out.exists() and not vec.exists()


def test_cli_export_layer_and_vectors(cli, capsys, tmp_path):
    from bincount.model.export.vectors import load_lane_vectors

    out, vec = tmp_path / "l.npz", tmp_path / "v.npz"
    assert cli(["export-layer", "--cin", "256", "--seed", "3", "-o", str(out),
                "--vectors", str(vec), "--count", "64"]) == 0
    assert "wrote" in capsys.readouterr().out
    layer = load_layer(out)
    v = load_lane_vectors(vec)
    assert layer["meta"]["n"] == v["meta"]["n"] == 2304 and layer["meta"]["seed"] == 3
    ch = v["channel"]
    assert np.array_equal(v["wgt_bits"], layer["weight_bits"][ch])
    for key in ("threshold", "hi", "lo", "mul", "offset"):
        assert np.array_equal(v[key], layer[key][ch])
    assert v["meta"]["shift"] == int(layer["shift"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.npz", "v.npz"]
