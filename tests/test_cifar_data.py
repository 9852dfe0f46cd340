"""CIFAR-10 loaders (binary release, image folders / archives, cache) and the batch iterator."""

import io
import os
import tarfile

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.model.data import cifar
from bincount.model.data.batches import PAD, Batches, subset_indices


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cifar.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)


def _records(images, labels):
    """Binary-release bytes of uint8 images [K, 32, 32, 3] and labels [K]."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()


def write_binary_release(folder, per_file=3, seed=0):
    """A fake ``cifar-10-batches-bin``; returns ``{split: (images, labels)}``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, names in cifar.BIN_FILES.items():
        imgs, labs = [], []
        for name in names:
            im = rng.integers(0, 256, (per_file, 32, 32, 3), dtype=np.uint8)
            lab = rng.integers(0, 10, per_file)
            (folder / name).write_bytes(_records(im, lab))
            imgs.append(im)
            labs.append(lab)
        out[split] = (np.concatenate(imgs), np.concatenate(labs))
    return out


def _png(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_image_archive(path, split, per_class=2, classes=cifar.CLASSES, seed=0, encode=_jpeg):
    """A fake ``<split>.tar.gz`` in ImageFolder layout; returns ``(images, labels)`` in
    ImageFolder order (images as written, before any lossy encoding)."""
    rng = np.random.default_rng(seed)
    imgs, labs = [], []
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for c in classes:
            label = cifar.CLASSES.index(c) if c in cifar.CLASSES else 0
            for i in range(per_class):
                arr = np.full((32, 32, 3), 20 * label, np.uint8)
                arr[rng.integers(0, 32, 8), rng.integers(0, 32, 8)] = 255
                data = encode(arr)
                info = tarfile.TarInfo(f"{split}/{c}/{i:04d}.jpg")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                imgs.append(arr)
                labs.append(label)
    return np.stack(imgs), np.array(labs)


# -- binary release --------------------------------------------------------------------------

def test_binary_release_layout(tmp_path):
    truth = write_binary_release(tmp_path / cifar.BIN_FOLDER)
    for where in (tmp_path / cifar.BIN_FOLDER, tmp_path):      # the folder or its parent
        for split in cifar.SPLITS:
            images, labels = cifar.load_split(split, where, cache=False)
            assert images.dtype == np.uint8 and labels.dtype == np.int64
            np.testing.assert_array_equal(images, truth[split][0])
            np.testing.assert_array_equal(labels, truth[split][1])
    assert len(cifar.load_split("train", tmp_path)[0]) == 15


def test_binary_record_pixel_order(tmp_path):
    rec = np.zeros(cifar.RECORD_BYTES, np.uint8)
    rec[0] = 7
    rec[1 + 0 * 1024 + 2 * 32 + 5] = 11           # red, row 2, column 5
    rec[1 + 1 * 1024 + 31 * 32 + 0] = 22          # green, row 31, column 0
    rec[1 + 2 * 1024 + 0 * 32 + 31] = 33          # blue, row 0, column 31
    (tmp_path / "test_batch.bin").write_bytes(rec.tobytes())
    images, labels = cifar.load_split("test", tmp_path, cache=False)
    assert labels.tolist() == [7]
    assert images[0, 2, 5, 0] == 11 and images[0, 31, 0, 1] == 22 and images[0, 0, 31, 2] == 33
    assert int(images.sum()) == 66


def test_binary_release_archive(tmp_path):
    truth = write_binary_release(tmp_path / "src" / cifar.BIN_FOLDER)
    with tarfile.open(tmp_path / cifar.BIN_ARCHIVE, "w:gz") as tf:
        tf.add(tmp_path / "src" / cifar.BIN_FOLDER, arcname=cifar.BIN_FOLDER)
    images, labels = cifar.load_split("test", tmp_path, cache=False)
    np.testing.assert_array_equal(images, truth["test"][0])
    images, labels = cifar.load_split("train", tmp_path / cifar.BIN_ARCHIVE, cache=False)
    np.testing.assert_array_equal(labels, truth["train"][1])


def test_binary_release_malformed(tmp_path):
    folder = tmp_path / cifar.BIN_FOLDER
    write_binary_release(folder)
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(BincountError, match="lacks data_batch_3.bin"):
        cifar.load_split("train", folder)
    (folder / "test_batch.bin").write_bytes(b"\x00" * (cifar.RECORD_BYTES + 5))
    with pytest.raises(BincountError, match="multiple of 3073"):
        cifar.load_split("test", folder)
    rec = np.zeros(cifar.RECORD_BYTES, np.uint8)
    rec[0] = 42
    (folder / "test_batch.bin").write_bytes(rec.tobytes())
    with pytest.raises(BincountError, match="labels 0..9"):
        cifar.load_split("test", folder)


def test_missing_and_python_release(tmp_path):
    with pytest.raises(BincountError) as info:
        cifar.load_split("train", tmp_path / "nowhere")
    msg = str(info.value)
    assert "\n" not in msg
    for name in ("train.tar.gz", "data_batch_1.bin", "data_batch_5.bin", cifar.BIN_ARCHIVE,
                 "--data-dir", "does not exist", "bincount data fetch"):
        assert name in msg
    assert cifar.ENV_VAR not in msg        # the folder was given: no advice to set another
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(BincountError, match="python .pickled. CIFAR-10 release"):
        cifar.load_split("test", tmp_path)
    with pytest.raises(BincountError, match="unknown split"):
        cifar.load_split("validation", tmp_path)


# -- image folders ---------------------------------------------------------------------------

def test_jpeg_archive_and_cache(tmp_path, monkeypatch):
    truth, labels_true = write_image_archive(tmp_path / "test.tar.gz", "test")
    images, labels = cifar.load_split("test", tmp_path)
    assert images.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(labels, labels_true)
    assert np.abs(images.astype(int) - truth).mean() < 8           # JPEG is lossy
    # the same images as the per-index loader of the golden-vector probe, which numbers the
    # JPEG copy's NNNN.jpg files by their test-set index c * 1000 + NNNN
    few, few_labels = cifar.load_test_images(indices=[0, 3001, 9001], data_dir=tmp_path)
    np.testing.assert_array_equal(few, images[[0, 7, 19]])
    with pytest.raises(BincountError, match="image index 181 is not in .*; expected the whole "
                                            "test set there"):
        cifar.load_test_images(indices=[181], data_dir=tmp_path)
    cached = sorted(p.name for p in cifar.cache_dir().iterdir())
    assert len(cached) == 2 and all(n.endswith(".npy") for n in cached)
    for name in cached:                                           # plain arrays, no pickle
        np.load(cifar.cache_dir() / name, allow_pickle=False)

    def no_decode(src):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cifar, "_decode", no_decode)
    again, _ = cifar.load_split("test", tmp_path)
    np.testing.assert_array_equal(again, images)
    # a changed archive (size / mtime) is decoded again
    write_image_archive(tmp_path / "test.tar.gz", "test", per_class=3)
    st = (tmp_path / "test.tar.gz").stat()
    os.utime(tmp_path / "test.tar.gz", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        cifar.load_split("test", tmp_path)


def test_image_folder_tree_is_exact(tmp_path):
    truth, labels_true = write_image_archive(tmp_path / "t.tar.gz", "train", per_class=1,
                                             encode=_png)
    with tarfile.open(tmp_path / "t.tar.gz") as tf:
        tf.extractall(tmp_path / "tree", filter="data")
    images, labels = cifar.load_split("train", tmp_path / "tree", cache=False)
    np.testing.assert_array_equal(images, truth)
    np.testing.assert_array_equal(labels, labels_true)
    # one archive holding the split folder is read directly too
    images2, _ = cifar.load_split("train", tmp_path / "t.tar.gz", cache=False)
    np.testing.assert_array_equal(images2, truth)


def test_image_archive_malformed(tmp_path):
    (tmp_path / "train.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(BincountError, match="not a readable tar.gz"):
        cifar.load_split("train", tmp_path)
    write_image_archive(tmp_path / "train.tar.gz", "train", classes=("cat", "unicorn"))
    with pytest.raises(BincountError, match="unknown class folder 'unicorn'"):
        cifar.load_split("train", tmp_path)
    write_image_archive(tmp_path / "train.tar.gz", "test")         # wrong split inside
    with pytest.raises(BincountError, match="holds no train images"):
        cifar.load_split("train", tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("train/cat/0000.jpg")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"nope"))
    (tmp_path / "train.tar.gz").write_bytes(buf.getvalue())
    (tmp_path / "dir" / "train.tar.gz").mkdir(parents=True)
    with pytest.raises(BincountError, match="split not found .*train.tar.gz' is a directory, "
                                            "not the archive"):
        cifar.find_source("train", tmp_path / "dir")
    (tmp_path / "dir" / "train" / "cat").mkdir(parents=True)   # a valid source beside it
    assert cifar.find_source("train", tmp_path / "dir").kind == "image-folder"
    with pytest.raises(BincountError, match="cannot be decoded") as exc:
        cifar.load_split("train", tmp_path)
    # the member and its archive, and no object address from the decoder's message
    assert f"'train/cat/0000.jpg' in {str(tmp_path / 'train.tar.gz')!r}" in str(exc.value)
    assert " at 0x" not in str(exc.value)
    assert not cifar.cache_dir().exists() or not any(cifar.cache_dir().iterdir())


# -- batches ---------------------------------------------------------------------------------

def _images(n=24, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def test_eval_batches_are_normalised_in_order():
    images, labels = _images(10)
    b = Batches(images, labels, 4)
    xs, ys = zip(*b)
    assert [len(y) for y in ys] == [4, 4, 2] and len(b) == 3 and b.num_images == 10
    np.testing.assert_allclose(np.concatenate([x.numpy() for x in xs]), cifar.normalize(images),
                               atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for y in ys]), labels)


def test_training_batches_augment_and_are_seeded():
    import torch

    images, labels = _images(24)
    b = Batches(images, labels, 8, augment=True, seed=3)
    assert len(b) == 3
    e0 = list(b.epoch(0))
    again = list(Batches(images, labels, 8, augment=True, seed=3).epoch(0))
    other = list(b.epoch(1))
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(e0, again))
    assert not torch.equal(e0[0][0], other[0][0])
    # every image is a crop (4-pixel black padding) of its original, possibly flipped
    seen = np.concatenate([y.numpy() for _, y in e0])
    assert sorted(seen.tolist()) == sorted(labels.tolist())
    rng = np.random.default_rng([3, 0])
    order = rng.permutation(24)
    padded = torch.nn.functional.pad(b.images[torch.from_numpy(order)], [PAD] * 4)
    raw = torch.cat([x for x, _ in e0]) / b._inv_std + b._mean
    raw = raw.round().clamp(0, 255).to(torch.uint8)
    flips = 0
    for i in range(24):
        crops = [padded[i, :, oy:oy + 32, ox:ox + 32] for oy in range(9) for ox in range(9)]
        plain = any(torch.equal(c, raw[i]) for c in crops)
        flipped = any(torch.equal(c.flip(-1), raw[i]) for c in crops)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < 24


def test_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 50)
    idx = subset_indices(labels, 100, seed=5)
    assert np.bincount(labels[idx]).tolist() == [10] * 10
    assert np.array_equal(idx, subset_indices(labels, 100, seed=5))
    assert not np.array_equal(idx, subset_indices(labels, 100, seed=6))
    assert len(subset_indices(labels, None, 0)) == 500
    with pytest.raises(BincountError):
        Batches(np.zeros((2, 32, 32), np.uint8), [0, 1], 2)
