"""Atomic file output: write to a temporary name in the same folder, then rename.

A crash or an error never leaves a half-written file under the final name.
"""

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from bincount.errors import BincountError

__all__ = ["ensure_dir", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "replace_marked_section",
           "atomic_savez", "load_npz", "read_meta_json"]


def ensure_dir(path):
    """Create ``path`` (and parents); raise :class:`BincountError` if it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BincountError(f"cannot create output directory {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise BincountError(f"output directory {str(path)!r} is not writable; "
                            f"choose a writable directory with -o")
    return path


def atomic_write_bytes(path, data):
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text):
    return atomic_write_bytes(path, text.encode("utf-8"))


def replace_marked_section(path, begin, end, text):
    """Replace the part of text file ``path`` from the line ``begin`` to the line ``end``
    (both included; ``text`` carries its own markers) with ``text``, or append ``text`` when
    the markers are missing or the file does not exist. Written atomically."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    atomic_write_text(path, new)


def atomic_write_json(path, obj):
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_savez(path, **arrays):
    """``np.savez_compressed`` to ``path`` atomically (no pickled objects allowed)."""
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are stored")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path, required=()):
    """Load an ``.npz`` without pickle; check that ``required`` keys are present.

    Raises :class:`BincountError` for a missing, unreadable or incomplete file.
    """
    path = Path(path)
    if not path.is_file():
        raise BincountError(f"file {str(path)!r} does not exist; expected an .npz written by bincount")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise BincountError(f"file {str(path)!r} is not a readable .npz archive "
                            f"({type(exc).__name__}: {exc})") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise BincountError(f"file {str(path)!r} lacks arrays {missing}; "
                            f"expected an .npz written by bincount with {list(required)}")
    return data


def read_meta_json(data, where):
    """Parse the scalar string array ``data["meta_json"]`` of a bincount ``.npz`` into a dict.

    Raises :class:`BincountError` (``"{where}: ..."``) when it is missing, not a scalar string,
    not valid JSON, or not a JSON object.
    """
    if "meta_json" not in data:
        raise BincountError(f"{where}: lacks the array 'meta_json'")
    mj = np.asarray(data["meta_json"])
    if mj.shape != () or mj.dtype.kind != "U":
        raise BincountError(f"{where}: meta_json must be a scalar string, "
                            f"got dtype {mj.dtype} shape {mj.shape}")
    try:
        meta = json.loads(str(mj[()]))
    except ValueError as exc:
        raise BincountError(f"{where}: meta_json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise BincountError(f"{where}: meta_json must hold a JSON object")
    return meta
