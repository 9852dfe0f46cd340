"""Whole-network integer export: layout, integer formats, round trip, CLI, bad input."""

import json
import re

import numpy as np
import pytest
import torch

from bincount.cli import main
from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.nets.calibrate import calibrated_network
from bincount.model.export.net_format import NetFormat
from bincount.model.export.network_export import export_arrays, export_network, input_lut, stem_fold
from bincount.model.training.train import load_model
from bincount.model.export.network_file import expected_arrays, load_export, validate_export
from bincount.model.export.network_reference import NetworkReference, quantize_input


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def react():
    model, x = calibrated_network("reactnet18", "qat_cn_times_alpha", 0.125, seed=1,
                                  shortcut="real", slopes="trained")
    return model, x, export_arrays(model)


@pytest.fixture(scope="module")
def bireal_base():
    model, x = calibrated_network("birealnet18", "baseline", 0.125, seed=2, shortcut="concat")
    return model, x, export_arrays(model)


def _arrays(e):
    return {k: v for k, v in e.items() if k != "meta"}


def test_layout_reactnet_binarized(react):
    model, _, e = react
    meta = e["meta"]
    assert meta["format"] == "bincount-network" and meta["version"] == 1
    assert meta["network"] == "reactnet18" and meta["form"] == "binarized"
    assert [layer["name"] for layer in meta["layers"]] == model.layer_names
    assert set(_arrays(e)) == set(expected_arrays(meta))
    first = meta["layers"][0]
    assert first["rsign"] and first["rprelu"] == "trained" and first["downsample"] is None
    assert meta["layers"][4]["downsample"] == "real" and meta["layers"][4]["stride"] == 2
    for layer in meta["layers"]:
        p = layer["name"] + "."
        assert p + "threshold" in e and p + "mul" not in e
        assert e[p + "weight_bits"].dtype == np.uint8
    assert meta["head"]["pool"] == 16 and meta["stem"]["cout"] == 8


def test_layout_bireal_baseline(bireal_base):
    _, _, e = bireal_base
    meta = e["meta"]
    assert meta["form"] == "baseline" and meta["arch"] == "bireal"
    for layer in meta["layers"]:
        p = layer["name"] + "."
        assert p + "mul" in e and p + "threshold" not in e and p + "rsign_bias" not in e
        assert p + "rprelu.bias0" not in e and p + "down.weight" not in e
        assert int(e[p + "shift"]) == layer["shift"]
    assert meta["layers"][4]["downsample"] == "concat"


def test_binary_layers_are_the_layer_export(react, bireal_base):
    """The network export of a binary layer is exactly the one-layer export's arithmetic."""
    for model, _, e in (react, bireal_base):
        fmt = NetFormat.from_dict(e["meta"]["formats"])
        for block in model.blocks[:6]:
            p = block.name + "."
            params = block.conv.fixed_params(out_bits=fmt.res_bits, out_frac=fmt.res_frac)
            assert np.array_equal(e[p + "weight_bits"], params["weight_bits"])
            keys = ("threshold", "hi", "lo") if block.conv.form == "binarized" else \
                ("mul", "offset", "shift")
            for k in keys:
                assert np.array_equal(e[p + k], params[k]), (p, k)


def test_integer_formats(react):
    model, _, e = react
    fmt = NetFormat.from_dict(e["meta"]["formats"])
    b = model.blocks[5]
    p = b.name + "."
    bias = b.rsign.shift.bias.detach().double().numpy().ravel()
    assert np.array_equal(e[p + "rsign_bias"], fp.round_half_up(bias * 2 ** fmt.res_frac))
    slope = b.rprelu.slope.detach().double().numpy()
    assert np.array_equal(e[p + "rprelu.slope"], fp.round_half_up(slope * 2 ** fmt.slope_frac))
    # real convs: BN folded into power-of-two-scaled weights, power-of-two multipliers
    for prefix in ("stem.", "stage2.conv1.down.", "head."):
        w, m = e[prefix + "weight"], e[prefix + "mul"]
        assert np.all(m > 0) and np.all((m & (m - 1)) == 0), prefix
        top = 2 ** (fmt.real_w_bits - 1) - 1
        per = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        assert np.all(per <= top) and np.all(per > top // 2), prefix     # top bit used
    fold = stem_fold(model.stem, fmt)
    assert np.array_equal(fold["weight"], e["stem.weight"])
    # the stem's integers reproduce BN(conv(x)) within the weight quantisation
    x = torch.randn(2, 3, 32, 32)
    xi = quantize_input(x, e)
    ref = NetworkReference(e)
    acc = ref.stem(xi)                                   # channels-last
    y = (e["stem.mul"] * acc + e["stem.offset"]) >> int(e["stem.shift"])
    with torch.no_grad():
        yf = model.stem(torch.as_tensor(xi / 2.0 ** fmt.in_frac, dtype=torch.float32)).numpy()
    yf = yf.transpose(0, 2, 3, 1)
    assert np.max(np.abs(y / 2.0 ** fmt.res_frac - yf)) < 0.03


def test_pow2_export():
    model, _ = calibrated_network("reactnet18", "baseline", 0.125, seed=4, slopes="pow2",
                                  shortcut="concat", count=16)
    e = export_arrays(model)
    r = model.blocks[2].rprelu
    p = model.blocks[2].name + ".rprelu."
    eff = r.effective_slope().detach().numpy()
    assert np.array_equal(2.0 ** e[p + "slope_exp"] * np.where(e[p + "slope_neg"] == 1, -1, 1), eff)
    assert p + "slope" not in e


def test_input_lut_matches_quantised_normalisation(react):
    from bincount.model.data import cifar
    _, _, e = react
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    a = quantize_input(pixels, e)
    b = quantize_input(cifar.normalize(pixels), e)
    assert np.array_equal(a, b)
    assert np.array_equal(e["input_lut"], input_lut())


def test_save_load_round_trip(tmp_path, react):
    model, _, e = react
    path = tmp_path / "net.npz"
    export_network(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]       # no temporary left
    back = load_export(path)
    assert set(back) == set(e)
    for k in _arrays(e):
        assert np.array_equal(back[k], e[k]) and back[k].dtype == e[k].dtype, k
    assert back["meta"] == json.loads(json.dumps(e["meta"]))


def _corrupt(e, key, value):
    d = {k: v for k, v in _arrays(e).items()}
    if value is None:
        del d[key]
    else:
        d[key] = value
    return d


def test_bad_exports_are_rejected(react):
    _, _, e = react
    name = e["meta"]["layers"][0]["name"]
    meta = dict(e["meta"])
    cases = [
        _corrupt(e, name + ".hi", None),                                          # missing
        dict(_arrays(e), extra=np.zeros(1)),                                      # unknown
        _corrupt(e, name + ".threshold", e[name + ".threshold"][:-1]),            # shape
        _corrupt(e, name + ".threshold", e[name + ".threshold"].astype(np.int32)),  # dtype
        _corrupt(e, name + ".threshold", e[name + ".threshold"] + 10 ** 6),       # range
        _corrupt(e, name + ".hi", e[name + ".hi"] + 2 ** 20),                     # width
        _corrupt(e, "meta_json", np.array("{not json")),
        _corrupt(e, "meta_json", np.array(json.dumps(dict(meta, format="other")))),
        _corrupt(e, "meta_json", np.array(json.dumps(dict(meta, layers=meta["layers"][1:])))),
        _corrupt(e, "stem.weight", e["stem.weight"] * 1000),
        _corrupt(e, "stem.shift", np.array(int(e["stem.shift"]) + 1, dtype=np.int64)),
    ]
    for d in cases:
        with pytest.raises(BincountError) as info:
            validate_export(d)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"size": None}, "input: meta_json field 'size' is None; expected an integer >= 1"),
    ({"size": "abc"}, "input: meta_json field 'size' is 'abc'"),
    ({"channels": 1}, "input channels=1 size=32; the stem takes 3 channels at 32x32"),
    ({"size": 64}, "input channels=3 size=64; the stem takes 3 channels at 32x32"),
])
def test_input_description_must_match_the_stem(react, change, message):
    _, _, e = react
    meta = dict(e["meta"])
    meta["input"] = {k: v for k, v in dict(meta["input"], **change).items() if v is not None}
    with pytest.raises(BincountError, match=re.escape(message)):
        validate_export(_corrupt(e, "meta_json", np.array(json.dumps(meta))))


def test_zero_padding_is_not_exportable():
    model, _ = calibrated_network("birealnet18", "baseline", 0.125, pad_value=0.0, count=8)
    with pytest.raises(BincountError, match="padded with 0"):
        export_arrays(model)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(BincountError, match="does not exist"):
        load_export(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BincountError, match="not a readable"):
        load_export(bad)


def _ckpt_dict(config, state):
    """A checkpoint as bincount train writes it (the fields the one checkpoint reader needs)."""
    return {"format": "bincount-checkpoint", "version": 1, "network": config["network"],
            "variant": config["variant"], "width_mult": config["width_mult"],
            "network_config": dict(config), "model": state}


def _checkpoint(tmp_path, model, name="ck.pt", **extra):
    path = tmp_path / name
    torch.save({**_ckpt_dict(model.config, model.state_dict()), **extra}, path)
    return path


def test_export_cli(tmp_path, react, capsys, failing_replace):
    model, _, e = react
    ck = _checkpoint(tmp_path, model)
    out = tmp_path / "out" / "net.npz"
    gold = tmp_path / "out" / "gold.npz"
    assert main(["export", "--checkpoint", str(ck), "-o", str(out), "--golden", str(gold),
                 "--synthetic", "2"]) == 0
    back = load_export(out)
    for k in _arrays(e):
        if k != "meta_json":
            assert np.array_equal(back[k], e[k]), k
    assert back["meta"]["source"] == {"checkpoint": "ck.pt"}
    assert load_model(ck).config == model.config
    from bincount.model.export.network_reference import load_golden
    g = load_golden(gold)
    assert g["logits"].shape == (2, 10)
    assert "wrote" in capsys.readouterr().out
    # a second run whose golden file cannot be written leaves both earlier files as they were
    out.write_bytes(b"earlier export")
    gold.write_bytes(b"earlier golden")
    before = {p: p.read_bytes() for p in (out, gold)}
    failing_replace(lambda src, dst: dst == str(gold))
    assert main(["export", "--checkpoint", str(ck), "-o", str(out), "--golden", str(gold),
                 "--synthetic", "1", "--force"]) == 2
    assert "gold.npz': No space left on device" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (out, gold)} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["gold.npz", "net.npz"]


def test_export_cli_bad_input(tmp_path, react, capsys):
    model, _, _ = react
    out = tmp_path / "net.npz"
    cfg = dict(model.config, network="resnet50")
    bad_net = tmp_path / "badnet.pt"
    torch.save(_ckpt_dict(cfg, model.state_dict()), bad_net)
    cfg = dict(model.config, variant="qat_magic")
    bad_var = tmp_path / "badvar.pt"
    torch.save(_ckpt_dict(cfg, model.state_dict()), bad_var)
    wrong = tmp_path / "wrong.pt"
    torch.save(_ckpt_dict(dict(model.config, width_mult=0.25), model.state_dict()), wrong)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    nokeys = tmp_path / "nokeys.pt"
    torch.save({"weights": 1}, nokeys)
    for ck in (tmp_path / "missing.pt", bad_net, bad_var, wrong, junk, nokeys):
        assert main(["export", "--checkpoint", str(ck), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err, err
        assert not out.exists()
    ck = _checkpoint(tmp_path, model)
    for images in ("x,y", "1,,2", "1,"):
        assert main(["export", "--checkpoint", str(ck), "-o", str(out), "--golden",
                     str(tmp_path / "g.npz"), "--images", images]) == 2
        assert f"--images {images!r}; expected comma-separated integers" in \
            capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "g.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["badnet.pt", "badvar.pt", "wrong.pt", "junk.pt", "nokeys.pt", "ck.pt"])

