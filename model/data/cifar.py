"""CIFAR-10 loaders (torch-free: numpy, tarfile, Pillow).

Two layouts are read; the python release (``cifar-10-batches-py``) is **not**, because it is
pickled and bincount never unpickles data:

* the original **binary release** ``cifar-10-batches-bin``: ``data_batch_1.bin`` ..
  ``data_batch_5.bin`` (train) and ``test_batch.bin`` (test), each a sequence of 3,073-byte
  records (1 label byte 0..9, then 1,024 red, 1,024 green and 1,024 blue bytes, rows top to
  bottom); as that folder, a folder holding it, or its archive ``cifar-10-binary.tar.gz``;
* an **image folder** (ImageFolder layout, label = folder name) ``<split>/<class>/<file>``
  (``.jpg``, ``.jpeg`` or ``.png``, 32x32), as a tree or as the archive ``<split>.tar.gz``:
  the JPEG copy of ``../shared/data/cifar10-jpeg`` (``train.tar.gz``, ``test.tar.gz``).

Image index ``i`` of a split is the file order of its layout: for the binary release the
record order; for an image folder the ImageFolder order (classes in the standard CIFAR-10 label
order, which is also alphabetical; file names sorted within a class). In the JPEG test archive,
with 1,000 images per class, index ``i`` is file ``i % 1000`` of class ``i // 1000``.

Data folder: the ``data_dir`` argument if given; else the environment variable
``BINCOUNT_CIFAR_DIR`` if set (then only that folder); else the first of
``<repo>/data/cifar10-jpeg``, ``<repo>/data`` (where ``bincount data fetch`` puts the binary
release) and ``<repo>/../shared/data/cifar10-jpeg`` that holds the split (``<repo>`` is the
folder above ``model/``). Accuracy measured on the JPEG copy is "CIFAR-10 (JPEG copy)".

**Bundled sample.** ``<repo>/samples/cifar10-test/test.tar.gz`` (in git, about 0.66 MB) holds
the first :data:`SAMPLE_PER_CLASS` test images of every class of the JPEG copy, byte for byte,
under their original names, so index ``c * 1000 + k`` (``k < SAMPLE_PER_CLASS``) is the same
image in the sample and in the whole test set. :func:`load_test_images` falls back to it when
no other test archive is found (never when ``data_dir`` or ``BINCOUNT_CIFAR_DIR`` is given);
:func:`load_split` never does (an accuracy on the sample is not a test-set accuracy). The
seeded image draws of the golden-vector probes (:func:`sample_indices`) pick from the sample's
indices only, so tests see the same images with or without the whole test set.

:func:`load_split` decodes a whole split once and caches it as two uint8 / int64 ``.npy``
files (``np.save``, read with ``allow_pickle=False``) under ``build/cache/cifar/`` (or
``$BINCOUNT_CACHE_DIR/cifar``), keyed by the source's path, size and modification time, so that
training epochs never decode JPEGs again. :func:`load_test_images` decodes only the test images
asked for (the golden-vector probe needs a handful).
"""

import hashlib
import io
import os
import re
import sys
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from bincount.errors import BincountError
from bincount.fileio import atomic_write_bytes

__all__ = ["CLASSES", "MEAN", "STD", "ENV_VAR", "CACHE_ENV_VAR", "TEST_ARCHIVE", "SPLITS",
           "BIN_FILES", "BIN_FOLDER", "BIN_ARCHIVE", "RECORD_BYTES", "Source",
           "candidate_dirs", "find_data_dir", "find_source", "cache_dir", "load_split",
           "read_binary_batches", "test_index", "load_test_images", "normalize",
           "SAMPLE_DIR", "SAMPLE_PER_CLASS", "TEST_PER_CLASS", "TEST_SET_SIZE", "sample_indices"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean / std of CIFAR-10 (RGB, pixel / 255), the usual normalisation.
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
ENV_VAR = "BINCOUNT_CIFAR_DIR"
CACHE_ENV_VAR = "BINCOUNT_CACHE_DIR"
TEST_ARCHIVE = "test.tar.gz"
SPLITS = ("train", "test")
#: File names of the binary release per split.
BIN_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
             "test": ("test_batch.bin",)}
BIN_FOLDER = "cifar-10-batches-bin"
BIN_ARCHIVE = "cifar-10-binary.tar.gz"
RECORD_BYTES = 1 + 32 * 32 * 3
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_REPO = Path(__file__).resolve().parents[2]
#: The bundled sample of test images (see the module docstring).
SAMPLE_DIR = _REPO / "samples" / "cifar10-test"
#: Images per class in the bundled sample: test indices ``c * TEST_PER_CLASS + 0 .. 199``.
SAMPLE_PER_CLASS = 200
#: Images per class in the CIFAR-10 test set, and the test set's size.
TEST_PER_CLASS = 1000
TEST_SET_SIZE = TEST_PER_CLASS * len(CLASSES)
_CACHE_VERSION = 1


def sample_indices():
    """The test indices the bundled sample holds, sorted: ``c * 1000 + k``, ``k < 200``."""
    return [c * TEST_PER_CLASS + k for c in range(len(CLASSES)) for k in range(SAMPLE_PER_CLASS)]


def candidate_dirs(data_dir=None, sample=False):
    """The folders searched for the data, in order (``sample``: the bundled sample last, when
    neither ``data_dir`` nor ``BINCOUNT_CIFAR_DIR`` is given)."""
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]        # set: the only place looked at
    dirs = [_REPO / "data" / "cifar10-jpeg", _REPO / "data",
            _REPO.parent / "shared" / "data" / "cifar10-jpeg"]
    return dirs + [SAMPLE_DIR] if sample else dirs


def find_data_dir(data_dir=None, archive=TEST_ARCHIVE):
    """The first candidate folder holding ``archive`` (the bundled sample last);
    :class:`BincountError` if none does."""
    dirs = candidate_dirs(data_dir, sample=True)
    for d in dirs:
        if (d / archive).is_file():
            return d
    raise BincountError(f"CIFAR-10 archive {archive!r} not found {_looked_in(data_dir, dirs)}; "
                        f"expected a folder holding {archive} (the JPEG copy: "
                        f"test/<class>/<image>.jpg){_where_to_point(data_dir)}")


def _looked_in(data_dir, dirs):
    """Where the data was looked for, naming the option or variable that chose it."""
    if data_dir is not None:
        gone = "" if Path(data_dir).exists() else ", which does not exist"
        return f"in --data-dir {str(data_dir)!r}{gone}"
    if os.environ.get(ENV_VAR):
        return f"in ${ENV_VAR} {os.environ[ENV_VAR]!r}"
    return "in " + " or ".join(repr(str(d)) for d in dirs)


def _where_to_point(data_dir):
    """Advice on how to point at the data, unless the user already did (``--data-dir``)."""
    if data_dir is not None:
        return ""
    if os.environ.get(ENV_VAR):
        return f"; point ${ENV_VAR} or --data-dir at that folder"
    return f"; pass --data-dir or set ${ENV_VAR} to that folder"


def _member_index(cls, name, order):
    """Test index of member ``<class>/<name>``: ``cls * 1000 + NNNN`` for the JPEG copy's
    ``NNNN.jpg`` names (so a sample keeps the whole set's indices), else ``order``."""
    stem = name.rsplit(".", 1)[0]
    if stem.isdigit() and int(stem) < TEST_PER_CLASS:
        return cls * TEST_PER_CLASS + int(stem)
    return order


@lru_cache(maxsize=2)
def _test_index(path, mtime, size):
    """Decompressed tar and ``{test index: member}`` (see :func:`_member_index`)."""
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
    by_index = {}
    for order, key in enumerate(sorted(members)):
        by_index[_member_index(key[0], key[1], order)] = (key[0], members[key])
    if len(by_index) != len(members):      # mixed names: fall back to ImageFolder order
        by_index = {order: (key[0], members[key]) for order, key in enumerate(sorted(members))}
    return tf, by_index


def test_index(data_dir=None):
    """``(tarfile, {test index: (class, member)}, path)`` of the test archive, cached per file
    version."""
    path = find_data_dir(data_dir) / TEST_ARCHIVE
    st = path.stat()
    tf, members = _test_index(str(path), st.st_mtime_ns, st.st_size)
    return tf, members, path


def _missing_index(i, path, data_dir):
    if not 0 <= i < TEST_SET_SIZE:
        return f"image index {i} is outside the test set (0..{TEST_SET_SIZE - 1})"
    if Path(path).parent.resolve() == SAMPLE_DIR.resolve():
        return (f"image index {i} is not in the bundled sample {str(path)!r} (it holds indices "
                f"c*1000 + 0..{SAMPLE_PER_CLASS - 1}); for the whole test set put test.tar.gz "
                f"in data/cifar10-jpeg or run 'bincount data fetch'{_where_to_point(data_dir)}")
    return (f"image index {i} is not in {str(path)!r}; expected the whole test set there "
            f"(test/<class>/<index within the class>.jpg, 1,000 per class) or the binary "
            f"release, which 'bincount data fetch' downloads")


def load_test_images(count=None, indices=None, data_dir=None):
    """Decode test images: ``(images uint8 [K, 32, 32, 3] RGB, labels int64 [K])``.

    ``indices`` (test-set indices, see the module docstring) or the first ``count`` images
    the archive holds; only the requested images are decoded.
    """
    tf, members, path = test_index(data_dir)
    if indices is None:
        held = sorted(members)
        indices = held if count is None else held[:max(0, int(count))]
    indices = [int(i) for i in indices]
    images = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
    labels = np.empty(len(indices), dtype=np.int64)
    for j, i in enumerate(indices):
        if i not in members:
            raise BincountError(_missing_index(i, path, data_dir))
        labels[j], m = members[i]
        images[j] = _decode_image(tf.extractfile(m).read(), f"{m.name!r} in {str(path)!r}")
    return images, labels


def normalize(images):
    """``uint8 [K, 32, 32, 3]`` to ``float32 [K, 3, 32, 32]``: ``(pixel/255 - MEAN) / STD``."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((x - MEAN) / STD).transpose(0, 3, 1, 2))


# -- whole splits: binary release and image folders, decoded once and cached ------------------

@dataclass(frozen=True)
class Source:
    """Where one split lives: ``kind`` is ``"archive"`` (a tar file: image folder or binary
    release inside), ``"image-folder"`` (a ``<split>/<class>/<file>`` tree) or ``"binary"``
    (a folder with the binary release's ``.bin`` files)."""

    kind: str
    path: Path
    split: str

    def describe(self):
        return f"{self.kind} {str(self.path)!r} ({self.split})"


def _expected(split):
    files = ", ".join(BIN_FILES[split])
    return (f"expected {split}.tar.gz or {split}/<class>/<image>.jpg (an image folder such as "
            f"the JPEG copy), or the binary release {BIN_FOLDER}/ ({files}) or {BIN_ARCHIVE}")


def _check_split(split):
    if split not in SPLITS:
        raise BincountError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def _source_in(d, split):
    """The split's source inside folder ``d`` (or ``d`` itself if it is a tar file), or None."""
    d = Path(d)
    if d.is_file():
        return Source("archive", d, split)
    if not d.is_dir():
        return None
    if (d / f"{split}.tar.gz").is_file():
        return Source("archive", d / f"{split}.tar.gz", split)
    if (d / split).is_dir():
        return Source("image-folder", d / split, split)
    for folder in (d, d / BIN_FOLDER):
        if any((folder / name).is_file() for name in BIN_FILES[split]):
            return Source("binary", folder, split)
    if (d / BIN_ARCHIVE).is_file():
        return Source("archive", d / BIN_ARCHIVE, split)
    return None


def _python_release(d):
    d = Path(d)
    return d.is_dir() and any((d / name).exists() for name in
                              ("cifar-10-batches-py", "data_batch_1", "test_batch",
                               "cifar-10-python.tar.gz"))


def find_source(split, data_dir=None):
    """The :class:`Source` of ``split`` (``"train"`` or ``"test"``) in the first candidate
    folder that has it; :class:`BincountError` naming the expected layouts if none does."""
    _check_split(split)
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        src = _source_in(d, split)
        if src is not None:
            return src
    if any(_python_release(d) for d in dirs):
        raise BincountError(f"found the python (pickled) CIFAR-10 release, which bincount does "
                            f"not read (no pickle); {_expected(split)}")
    folders = [str(Path(d) / f"{split}.tar.gz") for d in dirs
               if (Path(d) / f"{split}.tar.gz").is_dir()]
    named = (f" ({', '.join(map(repr, folders))} is a directory, not the archive)"
             if folders else "")
    raise BincountError(f"CIFAR-10 {split} split not found {_looked_in(data_dir, dirs)}"
                        f"{named}; {_expected(split)}; 'bincount data fetch' downloads the "
                        f"binary release{_where_to_point(data_dir)}")


def cache_dir():
    """``$BINCOUNT_CACHE_DIR/cifar`` if set, else ``<repo>/build/cache/cifar``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]) / "cifar"
    return _REPO / "build" / "cache" / "cifar"


def _fingerprint(src):
    """Text that changes whenever the source's files change (path, size, mtime)."""
    def stat(p):
        st = p.stat()
        return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"

    if src.kind == "archive":
        parts = [stat(src.path)]
    elif src.kind == "binary":
        parts = [stat(src.path / n) for n in BIN_FILES[src.split] if (src.path / n).is_file()]
    else:
        parts = [stat(src.path)] + [f"{stat(c)}:{sum(1 for _ in c.iterdir())}"
                                    for c in sorted(src.path.iterdir()) if c.is_dir()]
    return f"v{_CACHE_VERSION}|{src.kind}|{src.split}|" + "|".join(parts)


def _parse_records(raw, name):
    """Binary-release bytes of one file -> ``(images [K,32,32,3], labels [K])``."""
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise BincountError(f"{name!r} has {len(raw)} bytes, not a positive multiple of "
                            f"{RECORD_BYTES}; expected binary-release records (1 label byte "
                            f"+ 3072 pixel bytes)")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise BincountError(f"{name!r} holds label {int(labels.max())}; expected labels 0..9 "
                            f"(is it the CIFAR-100 release?)")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_binary_batches(folder, split):
    """Read the binary release's files of ``split`` from ``folder`` (all must be there)."""
    folder = Path(folder)
    missing = [n for n in BIN_FILES[split] if not (folder / n).is_file()]
    if missing:
        raise BincountError(f"binary release folder {str(folder)!r} lacks {', '.join(missing)}; "
                            f"expected {', '.join(BIN_FILES[split])}")
    parts = [_parse_records((folder / n).read_bytes(), str(folder / n)) for n in BIN_FILES[split]]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _decode_image(data, name):
    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except Exception as exc:  # PIL.UnidentifiedImageError, OSError, ...
        why = re.sub(r" <[^>]* at 0x[0-9a-f]+>", "", str(exc))   # no object addresses
        raise BincountError(f"image {name} cannot be decoded ({type(exc).__name__}: {why}); "
                            f"expected a 32x32 JPEG or PNG") from None
    if arr.shape != (32, 32, 3):
        raise BincountError(f"image {name} is {arr.shape}; expected 32x32 RGB")
    return arr


def _image_member(parts, split, where):
    """``(class_index, file_name)`` if ``parts`` (a path split on '/') is an image of the
    split, else None; :class:`BincountError` for an unknown class folder."""
    if len(parts) < 3 or parts[-3] != split or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    if parts[-2] not in CLASSES:
        raise BincountError(f"{where!r} has an unknown class folder {parts[-2]!r}; expected "
                            f"one of {', '.join(CLASSES)}")
    return CLASSES.index(parts[-2]), parts[-1]


def _stack(found, where, split):
    if not found:
        raise BincountError(f"{where!r} holds no {split} images; {_expected(split)}")
    order = sorted(found)
    return (np.stack([found[k] for k in order]),
            np.array([c for c, _ in order], dtype=np.int64))


def _decode_archive(src):
    path, split = src.path, src.split
    images, bins = {}, {}
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                base = parts[-1] if parts else ""
                if base in BIN_FILES[split]:
                    bins[base] = tf.extractfile(m).read()
                    continue
                key = _image_member(parts, split, str(path))
                if key is not None:
                    images[key] = _decode_image(tf.extractfile(m).read(),
                                                f"{m.name!r} in {str(path)!r}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BincountError(f"archive {str(path)!r} is not a readable tar.gz ({type(exc).__name__}: "
                            f"{exc}); {_expected(split)}") from None
    if bins:
        missing = [n for n in BIN_FILES[split] if n not in bins]
        if missing:
            raise BincountError(f"archive {str(path)!r} lacks {', '.join(missing)}; expected "
                                f"{', '.join(BIN_FILES[split])} of the binary release")
        parts = [_parse_records(bins[n], f"{path}:{n}") for n in BIN_FILES[split]]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _stack(images, str(path), split)


def _decode_folder(src):
    found = {}
    for cdir in sorted(src.path.iterdir()):
        if not cdir.is_dir() or cdir.name.startswith("."):
            continue
        for f in sorted(cdir.iterdir()):
            key = _image_member([src.split, cdir.name, f.name], src.split, str(src.path))
            if key is not None and f.is_file():
                found[key] = _decode_image(f.read_bytes(), repr(str(f)))
    return _stack(found, str(src.path), src.split)


def _decode(src):
    if src.kind == "binary":
        return read_binary_batches(src.path, src.split)
    if src.kind == "archive":
        return _decode_archive(src)
    return _decode_folder(src)


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def load_split(split, data_dir=None, cache=True, verbose=False):
    """All images of ``split``: ``(images uint8 [K, 32, 32, 3] RGB, labels int64 [K])``.

    The first call decodes the source and saves the arrays under :func:`cache_dir` (keyed by
    the source's path, size and mtime); later calls load the ``.npy`` files. ``verbose`` prints
    one line on stderr when decoding.
    """
    src = find_source(split, data_dir)
    key = hashlib.sha256(_fingerprint(src).encode()).hexdigest()[:20]
    stem = f"{split}-{re.sub(r'[^A-Za-z0-9]+', '_', src.path.name)}-{key}"
    img_path = cache_dir() / f"{stem}.images.npy"
    lab_path = cache_dir() / f"{stem}.labels.npy"
    if cache and img_path.is_file() and lab_path.is_file():
        try:
            images = np.load(img_path, allow_pickle=False)
            labels = np.load(lab_path, allow_pickle=False)
            if (images.dtype == np.uint8 and images.ndim == 4 and images.shape[1:] == (32, 32, 3)
                    and labels.shape == (images.shape[0],)):
                return images, labels.astype(np.int64, copy=False)
        except (OSError, ValueError, EOFError):
            pass                       # unreadable cache: decode again and overwrite it
    if verbose:
        print(f"decoding CIFAR-10 {src.describe()} (cached afterwards)", file=sys.stderr,
              flush=True)
    images, labels = _decode(src)
    if cache:
        try:
            atomic_write_bytes(lab_path, _npy_bytes(labels))
            atomic_write_bytes(img_path, _npy_bytes(images))
        except (BincountError, OSError) as exc:
            if verbose:
                print(f"note: CIFAR-10 cache not written ({exc})", file=sys.stderr)
    return images, labels
