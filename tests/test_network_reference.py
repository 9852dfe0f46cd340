"""Integer reference of the whole network: torch fixed point == numpy bit for bit, fidelity to
the float layers, golden vectors, agreement."""

import json

import numpy as np
import pytest
import torch

from bincount.cli import main
from bincount.errors import BincountError
from bincount.model.export import fixed_point as fp
from bincount.model.nets.calibrate import calibrated_network, synthetic_images
from bincount.model.export.net_format import NetFormat
from bincount.model.export.network_export import export_arrays, export_network
from bincount.model.export.network_reference import (TENSOR_DOC, NetworkReference, agreement, golden,
                                              load_golden, run_reference)

CONFIGS = [  # network, variant, flags
    ("reactnet18", "baseline", {"shortcut": "real", "slopes": "trained"}),
    ("reactnet18", "qat_cn_times_alpha", {"shortcut": "concat", "slopes": "pow2"}),
    ("reactnet18", "qat_minmax", {"shortcut": "real", "slopes": "pow2"}),
    ("reactnet18", "simple_qat", {"shortcut": "concat", "slopes": "trained", "pad_value": -1.0}),
    ("birealnet18", "baseline", {"shortcut": "concat"}),
    ("birealnet18", "qat_cnk2_plus_alpha", {"shortcut": "real"}),
    ("birealnet18", "qat_cn_times_alpha", {"shortcut": "concat", "count_bn": "none"}),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


_CACHE = {}


def net(i):
    """Config i: a calibrated width-0.125 network, its images and export (built once)."""
    if i not in _CACHE:
        name, variant, flags = CONFIGS[i]
        model, x = calibrated_network(name, variant, 0.125, seed=10 + i, count=24, **flags)
        _CACHE[i] = (model, x, export_arrays(model))
    return _CACHE[i]


def _ids(c):
    return "-".join([c[0], c[1]] + [f"{k}={v}" for k, v in c[2].items()])


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[_ids(c) for c in CONFIGS])
def test_torch_fixed_point_equals_numpy_reference(i):
    model, x, e = net(i)
    xs = x[:6]
    r_logits, r = run_reference(e, xs, tensors=True)
    t_logits, t = model.forward_fixed(xs, e, tensors=True)
    assert set(r) == set(t)
    for k in r:
        tv = t[k].numpy()
        assert tv.dtype == (np.uint8 if k.endswith("act_bits") else np.int64), k
        assert r[k].dtype == tv.dtype and np.array_equal(r[k], tv), k
    assert np.array_equal(r_logits, t_logits.numpy())
    # forward_fixed without an explicit export exports the model itself
    assert np.array_equal(model.forward_fixed(xs[:2]).numpy(), r_logits[:2])
    # batches are independent
    one = NetworkReference(e).run(xs[3:4])
    assert np.array_equal(one, r_logits[3:4])
    fmt = NetFormat.from_dict(e["meta"]["formats"])
    lo, hi = fp.int_range(fmt.res_bits)
    for layer in e["meta"]["layers"]:
        name = layer["name"]
        assert r[name + ".count"].min() >= 0 and r[name + ".count"].max() <= layer["n"]
        for k in ("conv_out", "shortcut", "sum", "output"):
            assert r[f"{name}.{k}"].min() >= lo and r[f"{name}.{k}"].max() <= hi


@pytest.mark.parametrize("i", [0, 1, 3, 5])
def test_counts_and_decisions_match_the_float_layers(i):
    """Teacher-forced: each binary layer on the reference's own input bits."""
    model, x, e = net(i)
    _, r = run_reference(e, x[:4], tensors=True)
    fmt = NetFormat.from_dict(e["meta"]["formats"])
    for block, layer in zip(model.blocks, e["meta"]["layers"]):
        name, conv = layer["name"], block.conv
        bits = r[name + ".act_bits"]
        pm = torch.as_tensor(2.0 * bits - 1.0, dtype=torch.float32)
        with torch.no_grad():
            d = conv.dot(pm)
            yf = conv(pm).double().numpy()
        count = r[name + ".count"]
        assert np.array_equal(2 * count - conv.n, d.numpy().astype(np.int64)), name
        if layer["pad_bit"] == 1:               # the one-layer reference of fixed_point.py
            params = conv.fixed_params(out_bits=fmt.res_bits, out_frac=fmt.res_frac)
            c1, yb, yl = fp.reference_layer(bits, params)
            assert np.array_equal(c1, count), name
            assert np.array_equal(yb if conv.form == "binarized" else yl, r[name + ".conv_out"])
        y = r[name + ".conv_out"] / 2.0 ** fmt.res_frac
        if conv.form == "binarized":
            b = (d.numpy() >= conv.alpha.detach().numpy().reshape(1, -1, 1, 1))
            t = e[name + ".threshold"].reshape(1, -1, 1, 1)
            assert np.array_equal(b, count >= t), name
            tol = 0.5
        else:
            tol = 1.5
        assert np.max(np.abs(y - yf)) * 2 ** fmt.res_frac <= tol + 1e-6, name


@pytest.mark.parametrize("i", [0, 1, 2, 4])
def test_shortcut_and_rprelu_match_the_float_blocks(i):
    """Teacher-forced: shortcut, sum and RPReLU on the reference's own integer tensors."""
    model, x, e = net(i)
    _, r = run_reference(e, x[:4], tensors=True)
    fmt = NetFormat.from_dict(e["meta"]["formats"])
    q = 2.0 ** fmt.res_frac
    for block, layer in zip(model.blocks, e["meta"]["layers"]):
        name = layer["name"]
        xin = torch.as_tensor(r[name + ".input"] / q, dtype=torch.float64)
        with torch.no_grad():
            blk = block.double()
            sc = blk.shortcut(xin).numpy()
            tol = 0.5 if layer["downsample"] != "real" else 0.03 * q    # 10-bit weights
            assert np.max(np.abs(r[name + ".shortcut"] - sc * q)) <= tol, name
            s = r[name + ".sum"]
            assert np.array_equal(s, np.clip(r[name + ".conv_out"] + r[name + ".shortcut"],
                                             *fp.int_range(fmt.res_bits)))
            if blk.rprelu is not None:
                out = blk.rprelu(torch.as_tensor(s / q)).numpy()
                t = np.abs(s / q) + 1.0
                slack = 1.5 + (t * 2.0 ** -(fmt.slope_frac + 1) * q
                               if layer["rprelu"] == "trained" else 0.5)
                assert np.all(np.abs(r[name + ".output"] - out * q) <= slack), name
            else:
                assert np.array_equal(r[name + ".output"], s)
            block.float()


def test_saturation_is_the_same_in_both():
    model, x, _ = net(0)
    with torch.no_grad():
        model.blocks[6].rprelu.bias1.fill_(200.0)        # beyond the 16-bit residual range
    try:
        e = export_arrays(model)
        _, r = run_reference(e, x[:2], tensors=True)
        _, t = model.forward_fixed(x[:2], e, tensors=True)
        name = model.blocks[6].name
        assert r[name + ".output"].max() == 2 ** 15 - 1
        for k in r:
            assert np.array_equal(r[k], t[k].numpy()), k
    finally:
        _CACHE.pop(0)


def test_golden_vectors(tmp_path):
    model, x, e = net(1)
    path = tmp_path / "g.npz"
    g = golden(e, x[:3], path=path, indices=[5, 6, 7], labels=[1, 2, 3])
    back = load_golden(path)
    logits, r = run_reference(e, x[:3], tensors=True)
    assert np.array_equal(back["logits"], logits)
    meta = back["meta"]
    assert meta["image_indices"] == [5, 6, 7] and meta["labels"] == [1, 2, 3]
    assert meta["layers"] == model.layer_names
    for k, v in r.items():
        assert np.array_equal(back[k], v), k
        doc = meta["tensors"][k]
        assert doc["shape"] == list(v.shape[1:]) and doc["meaning"]
    assert back["stage1.conv1.act_bits"].dtype == np.uint8
    assert meta["tensors"]["stage2.conv1.output"]["bits"] == 16
    assert meta["tensors"]["stage2.conv1.output"]["frac"] == 8
    assert np.array_equal(back["prediction"], np.argmax(logits, axis=1))
    assert set(g) - {"meta_json"} == set(back) - {"meta_json", "meta"}
    assert {k.split(".", 2)[-1] if k.startswith("stage") else k for k in r} <= \
        {k.replace("{L}.", "") for k in TENSOR_DOC}


def test_golden_cli_and_bad_input(tmp_path, capsys):
    model, _, _ = net(4)
    exp = tmp_path / "net.npz"
    export_network(model, exp)
    out = tmp_path / "g.npz"
    assert main(["golden", "--export", str(exp), "-o", str(out), "--synthetic", "2"]) == 0
    assert load_golden(out)["input"].shape == (2, 3, 32, 32)
    capsys.readouterr()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    out2 = tmp_path / "g2.npz"
    for args in (["--export", str(tmp_path / "none.npz")], ["--export", str(bad)],
                 ["--export", str(exp), "--synthetic", "0"]):
        assert main(["golden", *args, "-o", str(out2)]) == 2
        assert capsys.readouterr().err.count("\n") == 1
        assert not out2.exists()
    # an export whose keys do not fit its metadata
    data = dict(np.load(exp, allow_pickle=False))
    data.pop("head.mul")
    np.savez(tmp_path / "short.npz", **data)
    assert main(["golden", "--export", str(tmp_path / "short.npz"), "-o", str(out2)]) == 2
    assert "head.mul" in capsys.readouterr().err and not out2.exists()


def test_agreement_function():
    model, x, e = net(5)
    images = synthetic_images(12, 99)
    frac, pf, pi = agreement(model, e, images, batch=5, return_predictions=True)
    with torch.no_grad():
        expect = model(images).argmax(1).numpy()
    assert np.array_equal(pf, expect)
    assert np.array_equal(pi, np.argmax(run_reference(e, images), axis=1))
    assert frac == np.mean(pf == pi) and 0.0 <= frac <= 1.0
    with pytest.raises(BincountError):
        agreement(model, e, np.zeros((2, 32, 32, 3), dtype=np.uint8))


def test_reference_input_checks():
    _, _, e = net(4)
    ref = NetworkReference(e)
    for bad in (np.zeros((2, 3, 16, 16), np.float32), np.full((1, 3, 32, 32), np.nan, np.float32),
                np.full((1, 3, 32, 32), 10 ** 6, np.int64), np.zeros((2, 3, 32, 32), np.uint8)):
        with pytest.raises(BincountError):
            ref.run(bad)
    with pytest.raises(BincountError):
        NetworkReference(dict(json.loads("{}")))


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[_ids(c) for c in CONFIGS])
def test_fixed_point_float_forward_is_the_integer_network(i):
    """With the ``fixed_point`` flag, the float eval forward equals the integer reference:
    every block's output on the residual grid and the logits, exactly."""
    model, x, e = net(i)
    xs = x[:4]
    logits, r = run_reference(e, xs, tensors=True)
    outs = {}
    hooks = [b.register_forward_hook(lambda m, a, o, n=b.name: outs.__setitem__(n, o))
             for b in model.blocks]
    try:
        model.set_fixed_point(True)
        with torch.no_grad():
            y = model(xs).double().numpy()
        frac = e["meta"]["formats"]["res_frac"]
        for name, o in outs.items():
            assert np.array_equal(o.double().numpy() * 2 ** frac, r[name + ".output"]), name
        assert np.array_equal(y * 2 ** e["meta"]["formats"]["logit_frac"], logits)
        assert agreement(model, e, xs) == 1.0
    finally:
        for h in hooks:
            h.remove()
        model.set_fixed_point(False)
