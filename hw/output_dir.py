"""The report's output folder: refused early when it cannot be written, and filled with all
of its files or none."""

import os
import tempfile
from pathlib import Path

from bincount.errors import BincountError
from bincount.fileio import ensure_dir

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
    """Write ``files`` (``{name: str or bytes}``) into ``out_dir`` (created if needed): every
    file goes to a temporary name first and is renamed only when all are complete; a failed
    rename removes the files already renamed."""
    out_dir = ensure_dir(out_dir)
    temps, renamed = {}, []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            temps[name] = tmp
            if isinstance(text, bytes):
                with os.fdopen(fd, "wb") as f:
                    f.write(text)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        for name, tmp in temps.items():
            os.replace(tmp, Path(out_dir) / name)
            renamed.append(Path(out_dir) / name)
    except BaseException:
        for path in renamed:      # never one new file without the other
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
