"""Fetch the official CIFAR-10 binary release: download (resumable), check, extract atomically.

The release is ``cifar-10-binary.tar.gz`` from the data set's authors, 170,052,171 bytes, with
the MD5 ``c32a1d4ab5d03f1284b67883e8d87530`` published beside it. It holds
``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
``test_batch.bin`` (10,000 records of 3,073 bytes each: label byte, then 1,024 red, 1,024 green,
1,024 blue bytes) plus ``batches.meta.txt`` and ``readme.html``. No pickle anywhere.

Steps of :func:`fetch` (each safe to interrupt):

1. **Download** to ``<dir>/cifar-10-binary.tar.gz.part``. A ``.part`` left by an interrupted
   run is continued with an HTTP ``Range`` request (a server that ignores it sends the whole
   file again, and the ``.part`` restarts). ``--from FILE`` skips this step.
2. **Check** the size (when known) and the MD5. A downloaded file that fails is removed (a
   wrong ``.part`` cannot be resumed into a right one); a ``--from`` file that fails is left
   alone and refused. Only a file that passes is renamed to ``cifar-10-binary.tar.gz``.
3. **Extract** only the regular members named above (no links, no other paths) into a hidden
   temporary folder beside the target, check every ``.bin`` file's records, then rename the
   folder to ``<dir>/cifar-10-batches-bin`` in one step. An existing complete folder is kept
   (nothing is fetched) unless ``force``; with ``force`` it is moved aside whole first, put
   back if the new folder cannot take its place, and removed only once it has. An archive
   downloaded by this run that passes its MD5 but is not the release (unreadable, members
   missing, malformed records) is removed; an archive that was already there or came from
   ``--from`` is kept, and so is any archive when the extracted files cannot be written (a
   full disk). A run that fails removes a ``--dir`` it created, if the folder is still empty.

The loaders (:mod:`bincount.model.data.cifar`) find ``<repo>/data/cifar-10-batches-bin`` without
options; ``bincount data fetch`` puts it there by default.
"""

import hashlib
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from bincount.errors import BincountError
from bincount.model.data.cifar import BIN_ARCHIVE, BIN_FILES, BIN_FOLDER, _REPO, _parse_records

__all__ = ["OFFICIAL_URL", "OFFICIAL_MD5", "OFFICIAL_SIZE", "DEFAULT_DIR", "EXTRA_FILES",
           "ArchiveError", "md5_of", "check_url", "download", "check_archive", "extract",
           "fetch"]

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
OFFICIAL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
OFFICIAL_SIZE = 170_052_171
DEFAULT_DIR = _REPO / "data"
#: Members extracted besides the ``.bin`` files (when present).
EXTRA_FILES = ("batches.meta.txt", "readme.html")
_CHUNK = 1 << 20


def _all_bins():
    return tuple(BIN_FILES["train"]) + tuple(BIN_FILES["test"])


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _say(msg, quiet):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def check_url(url):
    """:class:`BincountError` unless ``url`` is an address :func:`download` can open
    (``http``, ``https`` or ``ftp`` with a host, or ``file``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port                                  # a malformed port raises here
    except ValueError as exc:
        raise BincountError(f"--url {url!r} is not an address to download from ({exc}); "
                            f"expected one such as https://HOST/{BIN_ARCHIVE}") from None
    if parts.scheme not in ("http", "https", "ftp", "file") or (
            parts.scheme != "file" and not parts.hostname):
        raise BincountError(f"--url {url!r} is not an address to download from (scheme "
                            f"{parts.scheme or 'none'!r}, host {parts.hostname or 'none'!r}); "
                            f"expected one such as https://HOST/{BIN_ARCHIVE}")


def download(url, part, quiet=False, timeout=60):
    """Download ``url`` into ``part``, continuing a partial file with a ``Range`` request."""
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "bincount"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:          # nothing left to send: the .part is whole
            return part
        raise BincountError(f"download of {url!r} failed: HTTP {exc.code} {exc.reason}; "
                            f"check the address (--url) or fetch it by hand and use --from FILE"
                            ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BincountError(f"cannot reach {url!r} ({reason}); without network access, download "
                            f"{BIN_ARCHIVE} elsewhere and use --from FILE") from None
    with resp:
        status = getattr(resp, "status", None) or resp.getcode()
        mode = "ab" if have and status == 206 else "wb"
        if have and mode == "wb":
            _say(f"server ignored the resume request: downloading {url} again", quiet)
            have = 0
        total = resp.headers.get("Content-Length")
        total = have + int(total) if total and total.isdigit() else None
        got, last = have, time.monotonic()
        with open(part, mode) as f:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                f.write(block)
                got += len(block)
                if time.monotonic() - last > 5:
                    last = time.monotonic()
                    of = f" of {total / 1e6:.1f}" if total else ""
                    _say(f"downloading {url}: {got / 1e6:.1f}{of} MB", quiet)
    return part


def check_archive(path, md5=OFFICIAL_MD5, size=None):
    """``None`` if ``path`` has ``size`` bytes (when given) and MD5 ``md5``, else the reason."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"has {actual:,} bytes, expected {size:,}"
    digest = md5_of(path)
    if digest != md5.lower():
        return f"has MD5 {digest}, expected {md5.lower()}"
    return None


def _complete(folder):
    """True if ``folder`` holds every ``.bin`` file as whole records."""
    for name in _all_bins():
        p = folder / name
        if not p.is_file() or p.stat().st_size == 0 or p.stat().st_size % 3073:
            return False
    return True


class ArchiveError(BincountError):
    """The archive itself is bad (unreadable, members missing, records malformed), as opposed
    to a failure to write the extracted files."""


def extract(archive, target):
    """Extract the release's files from ``archive`` into ``target`` atomically;
    :class:`ArchiveError` if the archive is bad, :class:`BincountError` if the files cannot be
    written."""
    wanted = set(_all_bins()) | set(EXTRA_FILES)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        found = set()
        try:
            with tarfile.open(archive, mode="r:*") as tf:
                for m in tf:
                    parts = [p for p in m.name.split("/") if p not in ("", ".")]
                    if (len(parts) == 2 and parts[0] == BIN_FOLDER and parts[1] in wanted
                            and m.isfile()):
                        with tf.extractfile(m) as src:
                            _copy_out(src, tmp / parts[1])
                        found.add(parts[1])
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"archive {str(archive)!r} is not a readable tar.gz "
                               f"({type(exc).__name__}: {exc}); expected {BIN_ARCHIVE}") from None
        missing = [n for n in _all_bins() if n not in found]
        if missing:
            raise ArchiveError(f"archive {str(archive)!r} lacks {BIN_FOLDER}/"
                               f"{', '.join(missing)}; expected the CIFAR-10 binary release")
        for name in _all_bins():
            try:
                _parse_records((tmp / name).read_bytes(), f"{archive}:{BIN_FOLDER}/{name}")
            except BincountError as exc:
                raise ArchiveError(str(exc)) from None
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        try:
            if target.exists():             # moved aside whole, removed once the new one is in
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(tmp, target)
        except BaseException as exc:        # an error, Ctrl-C or SIGTERM between the renames
            if old.exists() and not os.path.lexists(target):
                os.replace(old, target)     # the earlier files, as they were
            if isinstance(exc, OSError):
                raise BincountError(f"cannot replace {str(target)!r}: "
                                    f"{exc.strerror or type(exc).__name__}") from None
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _copy_out(src, path):
    """Copy an archive member to ``path``; a write that fails is a :class:`BincountError`
    (the disk's fault), a read that fails propagates (the archive's)."""
    try:
        dst = open(path, "wb", buffering=0)      # unbuffered: a failed write fails here
    except OSError as exc:
        raise BincountError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    with dst:
        for block in iter(lambda: src.read(_CHUNK), b""):
            try:
                dst.write(block)
            except OSError as exc:
                raise BincountError(f"cannot write {str(path)!r}: {exc.strerror}; the "
                                    f"archive is kept") from None


def fetch(dest=None, source=None, url=OFFICIAL_URL, md5=OFFICIAL_MD5, force=False, quiet=False):
    """Put the binary release in ``<dest>/cifar-10-batches-bin`` (see the module docstring).

    ``source``: an archive already on disk (``--from``) instead of downloading ``url``.
    Returns the folder.
    """
    dest = Path(dest) if dest is not None else DEFAULT_DIR
    if dest.exists() and not dest.is_dir():
        raise BincountError(f"--dir {str(dest)!r} is a file; expected a folder for "
                            f"{BIN_FOLDER}/")
    target = dest / BIN_FOLDER
    if not force and _complete(target):
        _say(f"{target} already holds the CIFAR-10 binary release (use --force to fetch again)",
             quiet)
        return target
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BincountError(f"cannot create --dir {str(dest)!r}: {exc.strerror}") from None
    if not os.access(dest, os.W_OK):
        raise BincountError(f"--dir {str(dest)!r} is not writable; choose a writable folder")
    try:
        return _fetch_into(dest, target, source, url, md5, quiet)
    except BincountError:
        if created and not any(dest.iterdir()):   # a failed run leaves no empty folder
            dest.rmdir()
        raise


def _fetch_into(dest, target, source, url, md5, quiet):
    size = OFFICIAL_SIZE if (url == OFFICIAL_URL and md5 == OFFICIAL_MD5) else None
    if source is not None:
        archive = Path(source)
        if not archive.is_file():
            what = "is a directory" if archive.is_dir() else "does not exist"
            raise BincountError(f"--from {str(archive)!r} {what}; expected the file "
                                f"{BIN_ARCHIVE}")
        bad = check_archive(archive, md5, size if md5 == OFFICIAL_MD5 else None)
        if bad:
            raise BincountError(f"--from {str(archive)!r} {bad}: not the CIFAR-10 binary "
                                f"release (or a damaged copy); nothing was extracted")
    downloaded = False
    if source is None:
        archive = dest / BIN_ARCHIVE
        if archive.is_file():
            bad = check_archive(archive, md5, size)
            if bad:
                raise BincountError(f"{str(archive)!r} {bad} (a partial or wrong file); delete "
                                    f"it, or pass a good copy with --from FILE")
        else:
            part = archive.with_name(archive.name + ".part")
            _say(f"downloading {url} -> {part}"
                 + (" (resuming)" if part.is_file() else ""), quiet)
            download(url, part, quiet)
            bad = check_archive(part, md5, size)
            if bad:
                part.unlink(missing_ok=True)
                raise BincountError(f"downloaded file from {url!r} {bad}; removed it (a "
                                    f"damaged or changed file cannot be resumed): run again")
            os.replace(part, archive)
            downloaded = True
    _say(f"checked {archive} (MD5 {md5.lower()}); extracting", quiet)
    try:
        return extract(archive, target)
    except ArchiveError as exc:
        if downloaded:         # fetched by this run, and bad: a later run starts afresh
            archive.unlink(missing_ok=True)
            raise BincountError(f"{exc}; removed the downloaded archive") from None
        raise
