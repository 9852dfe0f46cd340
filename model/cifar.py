"""CIFAR-10 test images from the JPEG archive ``test.tar.gz`` (torch-free: tarfile + Pillow).

The archive holds ``test/<class>/NNNN.jpg`` (ImageFolder layout). Image index ``i`` is the
ImageFolder order: classes in the standard CIFAR-10 label order (which is also alphabetical),
file names sorted within a class; with 1,000 images per class, index ``i`` is file
``i % 1000`` of class ``i // 1000``.

Data folder: the ``data_dir`` argument if given; else the environment variable
``BINCOUNT_CIFAR_DIR`` if set (then only that folder); else the first of
``<repo>/data/cifar10-jpeg`` and ``<repo>/../shared/data/cifar10-jpeg`` that holds the archive
(``<repo>`` is the folder above ``model/``). The labels are the CIFAR-10 JPEG copy's, so any
accuracy measured on it is "CIFAR-10 (JPEG copy)".
"""

import io
import os
import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from bincount.errors import BincountError

__all__ = ["CLASSES", "MEAN", "STD", "ENV_VAR", "TEST_ARCHIVE", "candidate_dirs",
           "find_data_dir", "test_index", "load_test_images", "normalize"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean / std of CIFAR-10 (RGB, pixel / 255), the usual normalisation.
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
ENV_VAR = "BINCOUNT_CIFAR_DIR"
TEST_ARCHIVE = "test.tar.gz"


def candidate_dirs(data_dir=None):
    """The folders searched for the archives, in order."""
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]        # set: the only place looked at
    repo = Path(__file__).resolve().parent.parent
    return [repo / "data" / "cifar10-jpeg", repo.parent / "shared" / "data" / "cifar10-jpeg"]


def find_data_dir(data_dir=None, archive=TEST_ARCHIVE):
    """The first candidate folder holding ``archive``; :class:`BincountError` if none does."""
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        if (d / archive).is_file():
            return d
    tried = ", ".join(repr(str(d)) for d in dirs)
    raise BincountError(f"CIFAR-10 archive {archive!r} not found (looked in {tried}); "
                        f"set {ENV_VAR} to the folder holding the JPEG archives")


@lru_cache(maxsize=2)
def _test_index(path, mtime, size):
    """Decompressed tar bytes and ``[(class_index, member_name)]`` in ImageFolder order."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        tf = tarfile.open(fileobj=io.BytesIO(raw), mode="r:*")
        members = {}
        for m in tf.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == "test" and parts[2].endswith(".jpg"):
                if parts[1] not in CLASSES:
                    raise BincountError(f"archive {path!r} has an unknown class folder "
                                        f"{parts[1]!r}; expected one of {', '.join(CLASSES)}")
                members[(CLASSES.index(parts[1]), parts[2])] = m
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BincountError(f"archive {path!r} is not a readable tar.gz ({type(exc).__name__}: "
                            f"{exc}); expected test/<class>/NNNN.jpg") from None
    if not members:
        raise BincountError(f"archive {path!r} holds no test/<class>/*.jpg images")
    order = sorted(members)
    return tf, [members[key] for key in order], np.array([c for c, _ in order], np.int64)


def test_index(data_dir=None):
    """``(tarfile, members, labels)`` of the test archive, cached per file version."""
    path = find_data_dir(data_dir) / TEST_ARCHIVE
    st = path.stat()
    tf, members, labels = _test_index(str(path), st.st_mtime_ns, st.st_size)
    return tf, members, labels


def load_test_images(count=None, indices=None, data_dir=None):
    """Decode test images: ``(images uint8 [K, 32, 32, 3] RGB, labels int64 [K])``.

    ``indices`` (ImageFolder order, see the module docstring) or the first ``count`` images;
    only the requested images are decoded.
    """
    from PIL import Image

    tf, members, labels = test_index(data_dir)
    if indices is None:
        if count is None:
            count = len(members)
        indices = range(min(int(count), len(members)))
    indices = np.asarray(list(indices), dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= len(members)):
        raise BincountError(f"image index {int(indices.max())} is outside the test set "
                            f"(0..{len(members) - 1})")
    images = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
    for j, i in enumerate(indices):
        m = members[int(i)]
        try:
            with Image.open(io.BytesIO(tf.extractfile(m).read())) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as exc:  # PIL.UnidentifiedImageError, OSError, ...
            raise BincountError(f"image {m.name!r} cannot be decoded ({type(exc).__name__}: "
                                f"{exc}); expected a 32x32 JPEG") from None
        if arr.shape != (32, 32, 3):
            raise BincountError(f"image {m.name!r} is {arr.shape}; expected 32x32 RGB")
        images[j] = arr
    return images, labels[indices]


def normalize(images):
    """``uint8 [K, 32, 32, 3]`` to ``float32 [K, 3, 32, 32]``: ``(pixel/255 - MEAN) / STD``."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((x - MEAN) / STD).transpose(0, 3, 1, 2))
