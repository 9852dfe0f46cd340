"""Golden lane vectors from a calibrated layer, and the CIFAR-10 test-image loader."""

import io
import json
import tarfile

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.model.data import cifar
from bincount.model.export import fixed_point as fp
from bincount.model.export.bits import xnor_popcount
from bincount.model.export.vectors import (BIT_KEYS, INT_KEYS, check_lane_vectors, lane_vectors,
                                    load_lane_vectors, save_lane_vectors)





# -- CIFAR-10 loader ------------------------------------------------------------------------

def test_load_test_images():
    images, labels = cifar.load_test_images(count=3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0]
    images, labels = cifar.load_test_images(indices=[0, 1000, 4199, 9199])
    assert labels.tolist() == [0, 1, 4, 9]
    x = cifar.normalize(images)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1.5
    with pytest.raises(BincountError, match="outside the test set"):
        cifar.load_test_images(indices=[10000])


def test_bundled_sample(monkeypatch, tmp_path):
    """The sample in the repository: its checksum, the indices it holds, and that the loaders
    fall back to it (and only the test-image loader) when nothing else is found."""
    import hashlib

    sums = (cifar.SAMPLE_DIR / "SHA256SUMS").read_text().split()
    archive = cifar.SAMPLE_DIR / sums[1]
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == sums[0]
    assert archive.stat().st_size <= 1_000_000
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    monkeypatch.setattr(cifar, "_REPO", tmp_path)          # no data/ and no ../shared
    assert cifar.find_data_dir() == cifar.SAMPLE_DIR
    _, members, path = cifar.test_index()
    assert sorted(members) == cifar.sample_indices() and len(members) == 2000
    images, labels = cifar.load_test_images(indices=[5, 3199, 9000])
    assert labels.tolist() == [0, 3, 9]
    with pytest.raises(BincountError, match="not in the bundled sample .* c.1000 . 0..199"):
        cifar.load_test_images(indices=[4321])
    with pytest.raises(BincountError, match="test split not found.*bincount data fetch"):
        cifar.find_source("test")
    # the same index is the same image in the whole test set (the JPEG copy, where present)
    full = tmp_path / "full"
    full.mkdir()
    import tarfile
    with tarfile.open(archive) as src, tarfile.open(full / "test.tar.gz", "w:gz") as dst:
        for m in src.getmembers():
            if m.isfile() and m.name.endswith(("0007.jpg", "0199.jpg")):
                dst.addfile(m, src.extractfile(m))
    few, few_labels = cifar.load_test_images(indices=[7, 8199], data_dir=full)
    assert np.array_equal(few, cifar.load_test_images(indices=[7, 8199])[0])
    assert few_labels.tolist() == [0, 8]


def test_cifar_missing(tmp_path, monkeypatch):
    with pytest.raises(BincountError, match="--data-dir"):
        cifar.load_test_images(count=1, data_dir=tmp_path)
    monkeypatch.setenv(cifar.ENV_VAR, str(tmp_path / "none"))
    with pytest.raises(BincountError, match="not found"):
        cifar.find_data_dir()


def test_cifar_malformed(tmp_path):
    (tmp_path / cifar.TEST_ARCHIVE).write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(BincountError, match="not a readable tar.gz"):
        cifar.load_test_images(count=1, data_dir=tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("test/cat/0000.jpg")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"nope"))
    (tmp_path / cifar.TEST_ARCHIVE).write_bytes(buf.getvalue())
    with pytest.raises(BincountError, match="cannot be decoded"):
        cifar.load_test_images(count=1, data_dir=tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("test/unicorn/0000.jpg")
        tf.addfile(info, io.BytesIO(b""))
    (tmp_path / cifar.TEST_ARCHIVE).write_bytes(buf.getvalue())
    with pytest.raises(BincountError, match="unknown class"):
        cifar.load_test_images(count=1, data_dir=tmp_path)


# -- lane vectors ---------------------------------------------------------------------------

@pytest.mark.parametrize("cin", [64, 128, 256, 512])
def test_vectors_come_from_the_calibrated_layer(cin):
    import torch

    from bincount.model.export.layer_export import layer_arrays
    from bincount.model.export.probe import calibrated_layer
    from bincount.model.export.vectors import DEFAULT_IMAGES, layer_meta_for, vectors_from_layer

    layer, x, info = calibrated_layer(cin, seed=0, images=DEFAULT_IMAGES[cin])
    n = 9 * cin
    assert layer.n == n and x.shape[2] == {64: 32, 128: 16, 256: 8, 512: 4}[cin]
    v = vectors_from_layer(layer, x, info, count=256, seed=0, check=False)
    meta = json.loads(str(v["meta_json"]))
    arrays = layer_arrays(layer, meta=layer_meta_for(layer, info, 0))

    # BN statistics are real: calibrated on the images, not the identity
    assert not torch.allclose(layer.bn.running_var, torch.ones(cin))
    assert meta["source_images"] == info["images"][:len(meta["source_images"])]

    # integer reference == torch fixed-point forward on the images the vectors come from
    xv = x[:len(meta["source_images"])]
    bits = (xv >= 0).numpy().astype(np.uint8)
    r_count, r_bin, r_base = fp.reference_layer(bits, arrays)
    t_count, t_bin, t_base = layer.fixed_outputs(xv, arrays)
    assert np.array_equal(r_count, t_count.numpy())
    assert np.array_equal(r_bin, t_bin.numpy()) and np.array_equal(r_base, t_base.numpy())

    # each vector is the reference's value at its (image, channel, row, col)
    img = np.searchsorted(np.asarray(info["images"]), v["image"])
    at = (img, v["channel"], v["row"], v["col"])
    assert np.array_equal(v["count"], r_count[at])
    assert np.array_equal(v["y_binarized"], r_bin[at])
    assert np.array_equal(v["y_baseline"], r_base[at])
    assert np.array_equal(xnor_popcount(v["act_bits"], v["wgt_bits"], n), v["count"])

    # shapes, dtypes, metadata
    assert len(v["count"]) == 256
    for key in BIT_KEYS:
        assert v[key].dtype == np.uint8 and v[key].shape == (256, (n + 7) // 8)
    for key in INT_KEYS:
        assert v[key].dtype == np.int64 and v[key].shape == (256,)
    for field in ("n", "out_bits", "out_frac", "mul_bits", "off_bits", "shift", "seed",
                  "source_images"):
        assert field in meta
    assert meta["n"] == n and meta["shift"] == int(arrays["shift"])

    # coverage: counts at T, just below and above; both decisions; negative BN scale
    d = v["count"] - v["threshold"]
    assert (d == 0).sum() >= 5 and (d == -1).sum() >= 5 and (d == 1).sum() >= 5
    assert np.any(v["y_binarized"] == v["hi"]) and np.any(v["y_binarized"] == v["lo"])
    assert np.any(v["hi"] < v["lo"]) and np.any(v["hi"] > v["lo"])
    assert np.any(v["mul"] < 0) and np.any(v["mul"] > 0)
    assert np.all((v["threshold"] >= 1) & (v["threshold"] <= n))
    assert len(np.unique(v["channel"])) >= 8


def test_lane_vectors_api_deterministic_and_saved(tmp_path):
    a = lane_vectors(128, count=64, seed=5)
    b = lane_vectors(128, count=64, seed=5)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    c = lane_vectors(128, count=64, seed=6)
    assert not np.array_equal(a["act_bits"], c["act_bits"])
    path = tmp_path / "v.npz"
    save_lane_vectors(path, a)
    loaded = load_lane_vectors(path)
    assert loaded["meta"]["seed"] == 5 and loaded["meta"]["n"] == 1152
    for key in a:
        assert np.array_equal(a[key], loaded[key]), key


def test_tampered_vectors_are_rejected(tmp_path):
    v = lane_vectors(512, count=32, seed=1)
    check_lane_vectors(v)
    bad = dict(v)
    bad["y_baseline"] = v["y_baseline"].copy()
    bad["y_baseline"][7] += 1
    with pytest.raises(BincountError, match="vector 7: y_baseline"):
        check_lane_vectors(bad)
    bad = dict(v)
    bad["threshold"] = v["threshold"].copy()
    bad["threshold"][0] = 4610
    with pytest.raises(BincountError, match="outside 0..N\\+1"):
        check_lane_vectors(bad)
    path = tmp_path / "v.npz"
    np.savez(path, **{k: a for k, a in v.items() if k != "count"})
    with pytest.raises(BincountError, match="lacks arrays"):
        load_lane_vectors(path)
