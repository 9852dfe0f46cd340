"""Engine golden sets: per-layer tensors of a full-width calibrated ReActNet-18, both forms."""

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.model.export import engine_golden as eg

FORMS = ("binarized", "baseline")
#: (layer, stride): the first layer, a stage entry (concat downsample), a stage-3 layer, the
#: last stage entry.
LAYERS = (("stage1.conv1", 1), ("stage2.conv1", 2), ("stage3.conv3", 1), ("stage4.conv1", 2))


@pytest.fixture(scope="module")
def made():
    """``{form: (export, gold)}`` for seed 0, made once per module."""
    return {form: eg.engine_golden(form, seed=0) for form in FORMS}


# -- an independent numpy model of one binary block ---------------------------------------

def _sat(v, bits):
    return np.clip(v, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def block_numpy(case):
    """RSign -> 3x3 binary conv (pad bit) -> hi/lo or baseline requant -> + shortcut ->
    saturate -> RPReLU, from the constants and the input of ``layer_case``."""
    m, fmt = case["meta"], case["formats"]
    rb = fmt["res_bits"]
    x = case["input"]
    cin, cout, k, s, n = m["cin"], m["cout"], m["k"], m["stride"], m["n"]
    ho = m["out_size"]
    a = (x + case["rsign_bias"][:, None, None] >= 0) if m["rsign"] else (x >= 0)
    a = a.astype(np.int64)
    w = np.unpackbits(case["weight_bits"], axis=1, bitorder="little")[:, :n]
    w = w.reshape(cout, k, k, cin).astype(np.float64) * 2 - 1          # n = (ky*k+kx)*cin+ci
    p = k // 2
    ap = np.pad(a, ((0, 0), (p, p), (p, p)), constant_values=m["pad_bit"]) * 2 - 1
    taps = np.stack([np.stack([ap[:, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (ho - 1) + 1:s]
                               for kx in range(k)]) for ky in range(k)])   # [k, k, Cin, Ho, Wo]
    d = np.tensordot(w, taps.astype(np.float64), axes=([1, 2, 3], [0, 1, 2]))
    count = np.rint((d + n) / 2).astype(np.int64)                       # matches of +-1 values
    if m["form"] == "binarized":
        y = np.where(count >= case["threshold"][:, None, None], case["hi"][:, None, None],
                     case["lo"][:, None, None])
    else:
        acc = case["mul"][:, None, None] * (2 * count - n) + case["offset"][:, None, None]
        y = _sat(np.floor_divide(acc, 2 ** int(case["shift"])), rb)
    if m["downsample"] is None:
        sc = x
    else:
        assert m["downsample"] == "concat"
        xs = x
        if s == 2:
            xs = np.floor_divide(x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2]
                                 + x[:, 1::2, 1::2] + 2, 4)
        sc = xs[np.arange(cout) % cin]
    total = _sat(y + sc, rb)
    t = _sat(total + case["rprelu.bias0"][:, None, None], rb).astype(np.float64)
    if m["rprelu"] == "pow2":
        e = case["rprelu.slope_exp"][:, None, None]
        sign = np.where(case["rprelu.slope_neg"][:, None, None] == 1, -1, 1)
        neg = sign * np.floor(t * 2.0 ** e + 0.5)
    else:
        neg = np.floor(t * case["rprelu.slope"][:, None, None] / 2.0 ** fmt["slope_frac"] + 0.5)
    out = np.where(t >= 0, t, neg).astype(np.int64) + case["rprelu.bias1"][:, None, None]
    return {"act_bits": a, "count": count, "conv_out": y, "shortcut": sc, "sum": total,
            "output": _sat(out, rb)}


@pytest.mark.parametrize("layer,stride", LAYERS)
@pytest.mark.parametrize("form", FORMS)
def test_layer_matches_numpy_block(made, form, layer, stride):
    case = eg.layer_case(made[form], layer)
    m = case["meta"]
    assert m["stride"] == stride and m["form"] == form and m["name"] == layer == case["name"]
    assert m["rprelu"] == ("pow2" if form == "binarized" else "trained")
    assert (m["downsample"] == "concat") == (stride == 2)
    cin, cout, hw, ho = m["cin"], m["cout"], m["in_size"], m["out_size"]
    assert case["input"].shape == (cin, hw, hw) and case["input"].dtype == np.int64
    assert case["act_bits"].shape == (cin, hw, hw) and case["act_bits"].dtype == np.uint8
    for t in ("count", "conv_out", "shortcut", "sum", "output"):
        assert case[t].shape == (cout, ho, ho) and case[t].dtype == np.int64
    assert case["weight_bits"].shape == (cout, -(-m["n"] // 8))
    assert case["weight_bits"].dtype == np.uint8
    export, gold = made[form]
    assert case["image_index"] == gold["meta"]["image_indices"][0]
    assert case["label"] == gold["meta"]["labels"][0]
    for key in ("threshold", "hi", "lo", "mul", "offset", "shift", "rsign_bias"):
        assert (key in case) == (f"{layer}.{key}" in export)
        if key in case:
            assert np.array_equal(case[key], export[f"{layer}.{key}"])
    got = block_numpy(case)
    for key, value in got.items():
        assert np.array_equal(value, case[key]), f"{form} {layer}: {key} differs"
    if form == "binarized":
        assert np.any(case["hi"] < case["lo"])
    else:
        assert np.any(case["mul"] < 0)


@pytest.mark.parametrize("form", FORMS)
def test_real_calibration_and_chain(made, form):
    export, gold = made[form]
    src = export["meta"]["source"]
    assert src["form"] == form and src["seed"] == 0 and gold["meta"]["source"] == src
    assert export["meta"]["width_mult"] == 1.0 and export["meta"]["network"] == "reactnet18"
    assert export["meta"]["config"]["shortcut"] == "concat"
    calib, test = src["calibration"]["images"], src["test"]["images"]
    assert len(calib) == 16 and len(test) == 1 and not set(calib) & set(test)
    assert (calib, test) == eg.image_indices(0)
    assert gold["meta"]["image_indices"] == test and gold["meta"]["labels"] == src["test"]["labels"]
    # the golden input is the real image: input_lut of its CIFAR-10 pixels
    from bincount.model.data.cifar import load_test_images
    from bincount.model.export.network_reference import quantize_input

    pixels, labels = load_test_images(indices=test)
    assert labels.tolist() == src["test"]["labels"]
    assert np.array_equal(gold["input"], quantize_input(pixels, export))
    names = [layer["name"] for layer in export["meta"]["layers"]]
    assert len(names) == 16
    assert np.array_equal(gold[f"{names[0]}.input"], gold["stem.output"])
    for a, b in zip(names, names[1:]):
        assert np.array_equal(gold[f"{a}.output"], gold[f"{b}.input"])
    for name in names:
        assert np.ptp(gold[f"{name}.count"]) > 0 and 0 < gold[f"{name}.act_bits"].mean() < 1
    eg.check_sanity(export, gold)


def test_sanity_rejects_degenerate(made):
    export, gold = made["binarized"]
    flat = dict(gold)
    flat["stage2.conv3.count"] = np.full_like(gold["stage2.conv3.count"], 7)
    with pytest.raises(BincountError, match="stage2.conv3 count of image 0 is constant"):
        eg.check_sanity(export, flat)
    ones = dict(gold)
    ones["stage1.conv1.act_bits"] = np.ones_like(gold["stage1.conv1.act_bits"])
    with pytest.raises(BincountError, match="act_bits of image 0 are all 1"):
        eg.check_sanity(export, ones)
    pos = dict(export)
    pos["stage4.conv4.hi"] = np.maximum(export["stage4.conv4.hi"], export["stage4.conv4.lo"])
    with pytest.raises(BincountError, match="no channel with hi < lo"):
        eg.check_sanity(pos, gold)


def _same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        if k == "meta":
            assert a[k] == b[k]
        else:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_save_load_deterministic(made, tmp_path):
    path = tmp_path / "eng.npz"
    eg.save_engine_golden(path, "binarized", seed=0)
    assert [p.name for p in tmp_path.iterdir()] == ["eng.npz"]      # no temporary left
    with np.load(path, allow_pickle=False) as z:
        assert json.loads(str(z["meta_json"][()]))["format"] == eg.FORMAT
    export, gold = eg.load_engine_golden(path)
    for a, b in zip((export, gold), made["binarized"]):
        _same(a, b)
    case = eg.layer_case(path, "stage2.conv1")
    ref = eg.layer_case(made["binarized"], "stage2.conv1")
    assert case["meta"] == ref["meta"] and np.array_equal(case["output"], ref["output"])


def test_deterministic_in_memory(made):
    for a, b in zip(eg.engine_golden("baseline", seed=0), made["baseline"]):
        _same(a, b)
    assert eg.image_indices(0) != eg.image_indices(1)


def test_bad_arguments(made, tmp_path):
    with pytest.raises(BincountError, match="form 'ternary'; expected one of binarized, baseline"):
        eg.engine_golden("ternary")
    with pytest.raises(BincountError, match="calib_images"):
        eg.engine_golden("baseline", calib_images=1)
    with pytest.raises(BincountError, match="seed"):
        eg.image_indices(-1)
    with pytest.raises(BincountError, match="unknown layer 'stage5.conv1'"):
        eg.layer_case(made["baseline"], "stage5.conv1")
    with pytest.raises(BincountError, match="image 1"):
        eg.layer_case(made["baseline"], "stage1.conv1", image=1)
    with pytest.raises(BincountError, match="expects the .export, gold. pair"):
        eg.layer_case({"a": 1}, "stage1.conv1")
    with pytest.raises(BincountError, match="is a directory"):
        eg.save_engine_golden(tmp_path, "baseline")


def _write(path, arrays):
    np.savez(path, **{k: v for k, v in arrays.items() if k != "meta"})


def test_bad_files(made, tmp_path):
    with pytest.raises(BincountError, match="does not exist"):
        eg.load_engine_golden(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(BincountError, match="not a readable .npz"):
        eg.load_engine_golden(tmp_path / "junk.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(BincountError, match="lacks arrays"):
        eg.load_engine_golden(tmp_path / "empty.npz")
    arrays = eg._file_arrays(*made["baseline"])
    good = tmp_path / "good.npz"
    _write(good, arrays)
    eg.load_engine_golden(good)

    def broken(name, **change):
        bad = dict(arrays)
        bad.update(change)
        path = tmp_path / name
        _write(path, bad)
        return path

    meta = json.loads(str(arrays["meta_json"][()]))
    with pytest.raises(BincountError, match="format 'other'"):
        eg.load_engine_golden(broken("fmt.npz", meta_json=np.array(json.dumps(
            dict(meta, format="other")))))
    with pytest.raises(BincountError, match="form 'binarized'"):
        eg.load_engine_golden(broken("form.npz", meta_json=np.array(json.dumps(
            dict(meta, form="binarized")))))
    with pytest.raises(BincountError, match="unknown arrays"):
        eg.load_engine_golden(broken("extra.npz", stray=np.zeros(2)))
    hi = np.asarray(arrays["export/stage1.conv1.rsign_bias"]).copy()
    hi[0] = 1 << 20
    with pytest.raises(BincountError, match=r"export part\): stage1.conv1.rsign_bias holds"):
        eg.load_engine_golden(broken("range.npz", **{"export/stage1.conv1.rsign_bias": hi}))
    out = np.asarray(arrays["golden/stage3.conv2.output"]).copy()
    out[0, 5, 1, 1] += 1
    path = broken("tamper.npz", **{"golden/stage3.conv2.output": out})
    with pytest.raises(BincountError, match="stage3.conv2.output differs from the integer"):
        eg.load_engine_golden(path)
    eg.load_engine_golden(path, check=False)                   # structure alone is fine
    short = np.asarray(arrays["golden/stage1.conv1.count"])[:, :3]
    with pytest.raises(BincountError, match=r"golden part\): stage1.conv1.count is int64"):
        eg.load_engine_golden(broken("shape.npz", **{"golden/stage1.conv1.count": short}))
    gone = {k: v for k, v in arrays.items() if not k.startswith("golden/")}
    _write(tmp_path / "half.npz", gone)
    with pytest.raises(BincountError, match="lacks the golden part"):
        eg.load_engine_golden(tmp_path / "half.npz")


def test_sim_cache(made, tmp_path, monkeypatch):
    """``simlib.engine_golden`` names the file by form, seed and model hash and makes it once."""
    spec = importlib.util.spec_from_file_location(
        "engine_golden_simlib", Path(__file__).resolve().parent.parent / "sim" / "simlib.py")
    simlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simlib)
    monkeypatch.setenv("BINCOUNT_SIM_BUILD", str(tmp_path))
    calls = []

    def fake_save(path, form, seed=0):
        calls.append((form, seed))
        _write(path, eg._file_arrays(*made[form]))

    monkeypatch.setattr(eg, "save_engine_golden", fake_save)
    (tmp_path / "vectors").mkdir()
    stale = tmp_path / "vectors" / "engine_baseline_s0_000000000000.npz"
    stale.write_bytes(b"old")
    path = simlib.engine_golden("baseline", seed=0)
    assert path.name == f"engine_baseline_s0_{simlib._model_digest()}.npz"
    assert path.parent == tmp_path / "vectors" and not stale.exists()
    assert simlib.engine_golden("baseline", seed=0) == path and calls == [("baseline", 0)]
    assert eg.layer_case(path, "stage1.conv2")["meta"]["name"] == "stage1.conv2"
    with pytest.raises(ValueError, match="form"):
        simlib.engine_golden("other")
