"""File input and output of the verbs: checked outputs, locks, atomic writes, checked loads.

* :func:`check_outputs` checks every output path of a command before any work starts;
* :func:`output_lock` makes one process at a time the writer of an output;
* the atomic writers write to a temporary name in the same folder, then rename: a crash, an
  error, Ctrl-C or SIGTERM never leaves a half-written file under the final name, and their
  errors name the path the user gave, never the temporary file;
* :func:`load_npz` reads an ``.npz`` without pickle.
"""

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bincount.errors import BincountError

__all__ = ["ensure_dir", "check_outputs", "output_lock", "file_kind", "atomic_write_bytes",
           "atomic_write_text", "atomic_write_json", "atomic_write_all", "file_path",
           "npz_bytes",
           "replace_marked_section",
           "atomic_savez", "load_npz", "read_meta_json"]


def ensure_dir(path):
    """Create ``path`` (and parents); raise :class:`BincountError` if it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        hint = {errno.EEXIST: "; a file has that name: choose another folder",
                errno.ENOTDIR: "; a file is in its path: choose another folder",
                errno.EACCES: "; choose a writable folder"}.get(exc.errno, "")
        raise BincountError(f"cannot create output directory {str(path)!r}: "
                            f"{exc.strerror}{hint}") from None
    if not os.access(path, os.W_OK):
        raise BincountError(f"output directory {str(path)!r} is not writable; "
                            f"choose a writable directory with -o")
    return path


def _writable_parent(path, option):
    """Fail unless the nearest existing ancestor of ``path``'s folder is a writable folder."""
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise BincountError(f"{option} {str(path)!r}: cannot create output directory "
                            f"{str(path.parent)!r}: {str(probe)!r} is a file, not a folder; "
                            f"choose a path in a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BincountError(f"{option} {str(path)!r}: folder {str(probe)!r} is not writable; "
                            f"choose a writable folder")


def _same_file(a, b):
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def file_path(option, text, example="out.pt"):
    """``Path(text)``, refused with one line when it names no file (empty, ``/``, ``.``):
    the paths a file name is derived from (``.json`` summaries) must have a name."""
    path = Path(text)
    if path.name in ("", ".."):           # '', '.', '/' and '..' name no file
        raise BincountError(f"{option} {str(text)!r} names no file; expected a file path "
                            f"such as {example}")
    return path


def check_outputs(outputs, force=False, inputs=()):
    """Check the output files of one command before it does any work; nothing is created.

    ``outputs``: ``[(option, path), ...]`` (``option`` names the path in messages, e.g.
    ``"-o"``; ``path`` None is skipped); ``inputs``: ``[(option, path), ...]`` the command
    reads. Raises :class:`BincountError` when an output is a directory, is given twice, is
    one of the inputs, lies where no writable folder can hold it, or exists and ``force`` is
    false. Returns the output paths (``Path``) in order.
    """
    seen = []
    for option, path in outputs:
        if path is None:
            continue
        path = Path(path)
        for other_option, other in seen:
            if _same_file(path, other):
                raise BincountError(f"{option} {str(path)!r} is also given as {other_option}; "
                                    f"each output needs its own path")
        for in_option, source in inputs:
            if source is not None and _same_file(path, Path(source)):
                raise BincountError(f"{option} {str(path)!r} is the input {in_option}; "
                                    f"write to another path")
        if path.is_dir():
            raise BincountError(f"{option} {str(path)!r} is a directory; expected a file name")
        _writable_parent(path, option)
        if not force and (path.exists() or path.is_symlink()):
            raise BincountError(f"{option} {str(path)!r} already exists; pass --force to "
                                f"replace it, or choose another path")
        seen.append((option, path))
    return [p for _, p in seen]


@contextlib.contextmanager
def output_lock(path, option="output"):
    """Hold an exclusive lock on output ``path`` for the ``with`` block (a ``.<name>.lock``
    file beside it, removed afterwards, as are folders made for it that stayed empty).
    Another process holding it: :class:`BincountError` at once (no waiting)."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    created = []                       # folders made for the lock: removed again if empty
    probe = lock.parent
    while not probe.exists() and probe.parent != probe:
        created.append(probe)
        probe = probe.parent
    ensure_dir(lock.parent)
    try:
        fd = _locked(lock, path, option)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield path
    finally:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)
        _remove_empty(created)


def _remove_empty(folders):
    for folder in folders:             # deepest first
        try:
            folder.rmdir()
        except OSError:
            break


def _locked(lock, path, option):
    import fcntl

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BincountError(f"{option} {str(path)!r} is being written by another bincount "
                                f"process; wait for it to finish or choose another path") \
                from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:                       # not removed by the previous holder meanwhile
            return fd
        os.close(fd)


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file and a rename
    (:func:`atomic_write_all` of one file); returns ``path``."""
    return atomic_write_all({path: data})[0]


def _umask():
    """The process's umask, read once (reading it means setting it for a moment)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


_UMASK = None


def _write_error(path, exc):
    """:class:`BincountError` for an ``OSError`` while writing ``path`` (the user's path,
    never a temporary file), with what to do for the common causes."""
    hint = {errno.EISDIR: "; a folder has the output's name: remove or rename it",
            errno.EACCES: "; choose a writable folder",
            errno.ENOSPC: "; free some space"}.get(exc.errno, "")
    return BincountError(f"cannot write {str(path)!r}: "
                         f"{exc.strerror or type(exc).__name__}{hint}")


def atomic_write_all(files):
    """Write ``files`` (``{path: str or bytes}``) all or none: each to a temporary name beside
    it (mode by the umask), then renamed in order; when a rename fails, the files already
    renamed get their previous contents back (or are removed if they are new), so a failed run
    leaves every output as it was. A path that is a folder is refused before any rename.
    Errors name the user's path, never a temporary file. Returns the paths."""
    files = {Path(p): d.encode("utf-8") if isinstance(d, str) else d for p, d in files.items()}
    umask = _umask()
    temps, backups, renamed = {}, {}, []
    current = None
    try:
        for path, data in files.items():
            current = path
            ensure_dir(path.parent)
            fd, temps[path] = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                               dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(temps[path], 0o666 & ~umask)
        for path in files:
            current = path
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        for path in list(files)[:-1]:       # the old contents, kept until all are in place
            current = path                  # (the last rename is the last step: if it
            if os.path.lexists(path):       # fails, that file was never replaced)
                fd, backups[path] = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".old",
                                                     dir=path.parent)
                os.close(fd)
                os.unlink(backups[path])
                try:
                    os.link(path, backups[path], follow_symlinks=False)
                except OSError:             # no hard links here: a copy
                    shutil.copy2(path, backups[path], follow_symlinks=False)
        for path in files:
            current = path
            os.replace(temps[path], path)
            del temps[path]
            renamed.append(path)
    except BaseException as exc:
        lost = []
        for path in renamed:
            try:
                if path in backups:
                    os.replace(backups[path], path)
                    del backups[path]
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                lost.append(path)
        if lost:                            # their backups are kept, and named
            keep = {backups.pop(p) for p in lost if p in backups}
            raise BincountError(
                f"cannot write {str(current)!r}, and {len(lost)} file(s) written before it "
                f"could not be put back: {', '.join(repr(str(p)) for p in lost)}"
                + (f"; their earlier contents are in {', '.join(repr(str(k)) for k in keep)}"
                   if keep else "")) from None
        if isinstance(exc, OSError):
            raise _write_error(current, exc) from None
        raise
    finally:
        for tmp in list(temps.values()) + list(backups.values()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return list(files)


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


def npz_bytes(**arrays):
    """The bytes of ``np.savez_compressed(arrays)`` (no pickled objects allowed)."""
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are stored")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def atomic_savez(path, **arrays):
    """``np.savez_compressed`` to ``path`` atomically (no pickled objects allowed)."""
    return atomic_write_bytes(path, npz_bytes(**arrays))


def load_npz(path, required=()):
    """Load an ``.npz`` without pickle; check that ``required`` keys are present.

    Raises :class:`BincountError` for a missing, unreadable or incomplete file.
    """
    path = Path(path)
    kind = file_kind(path)
    expected = "expected an .npz written by bincount"
    if kind in ("missing", "directory"):
        raise BincountError(f"file {str(path)!r} {_KIND_TEXT[kind]}; {expected}")
    if kind != "zip":
        raise BincountError(f"file {str(path)!r} is not a readable .npz archive: it "
                            f"{_KIND_TEXT[kind]}; {expected}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {}
            for k in z.files:
                try:
                    data[k] = z[k]
                except ValueError:     # an object array: would need pickle
                    raise BincountError(f"file {str(path)!r} is not a readable .npz archive: "
                                        f"its array {k!r} holds Python objects, which "
                                        f"bincount never unpickles; {expected}") from None
    except BincountError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise BincountError(f"file {str(path)!r} is not a readable .npz archive: a damaged "
                            f"or foreign zip archive ({type(exc).__name__}); {expected}") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise BincountError(f"file {str(path)!r} lacks arrays {missing}; "
                            f"expected an .npz written by bincount with {list(required)}")
    return data


_KIND_TEXT = {
    "missing": "does not exist",
    "directory": "is a directory, not a file",
    "other": "is not a regular file",
    "unreadable": "cannot be read (permission denied)",
    "empty": "is empty (0 bytes)",
    "pickle": "is a pickle stream, which bincount never unpickles",
    "data": "is not a zip archive (no zip header)",
}


def file_kind(path):
    """What ``path`` is, from its first bytes: ``"missing"``, ``"directory"``, ``"other"``
    (not a regular file), ``"unreadable"``, ``"empty"``, ``"zip"`` (a zip archive: ``.npz``
    or a torch checkpoint), ``"pickle"`` (a pickle stream, protocol 2 or later) or ``"data"``
    (anything else)."""
    path = Path(path)
    if path.is_dir():
        return "directory"
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "other"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return "unreadable"
    if not head:
        return "empty"
    if head in (b"PK\x03\x04", b"PK\x05\x06"):      # a zip's first entry, or an empty zip
        return "zip"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "pickle"
    return "data"


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
