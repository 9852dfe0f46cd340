"""The report's output folder: refused early when it cannot be written, and filled with all
of its files or none."""

import os
from pathlib import Path

from bincount.errors import BincountError
from bincount.fileio import atomic_write_all, ensure_dir

__all__ = ["check_output_dir", "write_all_or_none"]


def check_output_dir(path):
    """Fail early (:class:`BincountError`) if ``path`` cannot become a writable directory.

    Nothing is created: the nearest existing ancestor must be a writable directory.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is" if probe == path else f"lies under {str(probe)!r}, which is"
        raise BincountError(f"output directory {str(path)!r} {what} not a directory; "
                            f"choose a directory with -o")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BincountError(f"output directory {str(path)!r} is not writable "
                            f"({str(probe)!r} is read-only); choose a writable directory with -o")
    return path


def write_all_or_none(out_dir, files):
    """Write ``files`` (``{name: str or bytes}``) into ``out_dir`` (created if needed), all
    or none (:func:`bincount.fileio.atomic_write_all`: a failed run leaves the folder's
    earlier files as they were)."""
    out_dir = ensure_dir(out_dir)
    atomic_write_all({Path(out_dir) / name: data for name, data in files.items()})
