"""Content-addressed store of build results: one JSON file per key, written atomically.

A key is the SHA-256 of everything a result depends on (:func:`cache_key`: the design text,
the script, the tool versions, ...), so an entry is never stale: a changed input is a new key.
Entries live in ``<root>/<kind>/<key>.json``; ``root`` is ``$BINCOUNT_CACHE_DIR`` when set,
else ``build/cache`` (relative to the working directory). The kinds in use:

=========  =================================================================================
``synth``  Yosys resource counts (:mod:`bincount.hw.synth`)
``pnr``    nextpnr-ecp5 Fmax and utilisation (:mod:`bincount.hw.pnr`)
``verilog``  emitted Verilog of lanes and stage engines (:mod:`bincount.hw.designs`)
``cycles``   cycles per image measured in simulation (:mod:`bincount.hw.measured_cycles`)
=========  =================================================================================

A store that cannot be read is a miss and one that cannot be written costs time on the next
run, never correctness: :func:`read_entry` returns None and :func:`write_entry` only warns.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

from bincount.errors import BincountError
from bincount.fileio import atomic_write_json

__all__ = ["CACHE_KINDS", "cache_key", "default_cache_dir", "cache_dirs", "read_entry",
           "write_entry", "cached"]

CACHE_KINDS = ("synth", "pnr", "verilog", "cycles")


def cache_key(*parts):
    """SHA-256 over the given strings, each length-prefixed (no ambiguity between parts)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def default_cache_dir(kind="synth"):
    """``$BINCOUNT_CACHE_DIR/<kind>`` if set, else ``build/cache/<kind>`` (relative)."""
    root = os.environ.get("BINCOUNT_CACHE_DIR")
    return Path(root) / kind if root else Path("build") / "cache" / kind


def cache_dirs(cache_root="default"):
    """``{kind: folder or None}`` for every kind of :data:`CACHE_KINDS`: ``"default"`` gives
    :func:`default_cache_dir`, None no cache, anything else ``<cache_root>/<kind>``."""
    if cache_root == "default":
        return {k: default_cache_dir(k) for k in CACHE_KINDS}
    if cache_root is None:
        return {k: None for k in CACHE_KINDS}
    return {k: Path(cache_root) / k for k in CACHE_KINDS}


def read_entry(cache_dir, key):
    """The dict stored under ``key`` in ``cache_dir``, or None (no folder, no entry, or an
    entry that is not a JSON object)."""
    if cache_dir is None:
        return None
    try:
        with open(Path(cache_dir) / f"{key}.json", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_entry(cache_dir, key, data, warn=None):
    """Store ``data`` under ``key`` atomically (nothing when ``cache_dir`` is None). A failed
    write prints ``bincount: warning: cannot write <warn> cache ...`` when ``warn`` names the
    cache, and is silent otherwise."""
    if cache_dir is None:
        return
    try:
        atomic_write_json(Path(cache_dir) / f"{key}.json", data)
    except (OSError, BincountError) as exc:
        if warn:
            print(f"bincount: warning: cannot write {warn} cache in {str(cache_dir)!r} ({exc})",
                  file=sys.stderr)


def cached(cache_dir, key, make, fields):
    """``make()`` (a dict holding at least ``fields``), or the entry stored under ``key`` when
    it has every field; a fresh result is stored."""
    hit = read_entry(cache_dir, key)
    if hit is not None and all(f in hit for f in fields):
        return hit
    data = make()
    write_entry(cache_dir, key, data)
    return data
