"""One binary conv layer as integers: the ``bincount-layer`` ``.npz`` (version 1).

Layout (docs/formats.md): ``meta_json`` (JSON string), ``weight_bits`` ``uint8
[cout, ceil(N/8)]`` (tap-major channel-minor, little bit order), ``threshold``, ``hi``,
``lo``, ``mul``, ``offset`` ``int64 [cout]``, ``shift`` ``int64`` scalar. Writing is atomic;
:func:`load_layer` checks everything and raises :class:`BincountError` with one line that says
what was wrong. This module does not import torch (``export_layer`` duck-types the layer).
"""

import json

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz, read_meta_json
from bincount.model.export import fixed_point as fp
from bincount.model.export.bits import packed_bytes

__all__ = ["FORMAT", "VERSION", "BIT_ORDER", "KEYS", "META_INT_FIELDS",
           "layer_arrays", "export_layer", "load_layer", "validate_layer"]

FORMAT = "bincount-layer"
VERSION = 1
BIT_ORDER = ("tap-major channel-minor: n = (ky*k + kx)*cin + ci; bit 1 = +1; "
             "packed little: element n is bit n%8 of byte n//8")
KEYS = ("meta_json", "weight_bits", "threshold", "hi", "lo", "mul", "offset", "shift")
META_INT_FIELDS = ("cin", "cout", "k", "stride", "n", "out_bits", "out_frac", "mul_bits",
                   "off_bits", "shift")
_VECTOR_KEYS = ("threshold", "hi", "lo", "mul", "offset")


def layer_arrays(layer, meta=None, out_bits=fp.OUT_BITS, out_frac=fp.OUT_FRAC,
                 mul_bits=fp.MUL_BITS, off_bits=fp.OFF_BITS):
    """The arrays of the ``.npz`` for a :class:`BinaryConv2d` ``layer`` (in eval semantics).

    ``meta`` adds or overrides metadata (``name``, ``seed``, ``source``, ...). The result also
    carries the parsed metadata under ``"meta"`` (not written to the file), so it can be
    passed to :func:`bincount.model.export.fixed_point.reference_layer` directly.
    """
    params = layer.fixed_params(out_bits=out_bits, out_frac=out_frac, mul_bits=mul_bits,
                                off_bits=off_bits)
    info = {"format": FORMAT, "version": VERSION, "name": "binary_conv"}
    info.update(params["meta"])
    info.update({"seed": None, "source": "", "bit_order": BIT_ORDER,
                 "form": layer.form, "division_num": layer.division_num,
                 "delta_uses_scale": layer.delta_uses_scale})
    info.update(meta or {})
    for key in ("format", "version", *META_INT_FIELDS):   # never let meta contradict the arrays
        if key in params["meta"]:
            info[key] = params["meta"][key]
    info["format"], info["version"] = FORMAT, VERSION
    arrays = {"meta_json": np.array(json.dumps(info, sort_keys=True)),
              "weight_bits": np.ascontiguousarray(params["weight_bits"], dtype=np.uint8)}
    for key in _VECTOR_KEYS:
        arrays[key] = np.asarray(params[key], dtype=np.int64)
    arrays["shift"] = np.array(int(params["shift"]), dtype=np.int64)
    arrays["meta"] = info
    return arrays


def export_layer(layer, path, meta=None, **formats):
    """Write ``layer`` (a ``BinaryConv2d``) to ``path`` as a ``bincount-layer`` ``.npz``.

    ``meta``: extra metadata (``name``, ``seed``, ``source``); ``formats``: ``out_bits``,
    ``out_frac``, ``mul_bits``, ``off_bits``. Atomic. Returns the arrays written (plus
    ``"meta"``).
    """
    arrays = layer_arrays(layer, meta, **formats)
    validate_layer(arrays, where="exported layer")
    atomic_savez(path, **{k: v for k, v in arrays.items() if k != "meta"})
    return arrays


def load_layer(path):
    """Read and check a ``bincount-layer`` ``.npz``; returns its arrays plus ``"meta"`` (dict).

    Raises :class:`BincountError` for a missing or corrupt file, missing or unknown keys,
    a bad ``meta_json``, wrong shapes or dtypes, thresholds outside ``0..N+1``, or constants
    outside their bit widths.
    """
    data = load_npz(path, required=KEYS)
    validate_layer(data, where=f"file {str(path)!r}")
    return data


def _fail(where, msg):
    raise BincountError(f"{where}: {msg}")


def _check_range(where, name, arr, lo, hi, what):
    bad = np.flatnonzero((arr < lo) | (arr > hi))
    if bad.size:
        i = int(bad[0])
        _fail(where, f"{name}[{i}] = {int(arr.ravel()[i])} is outside {lo}..{hi}; "
                     f"expected {what}")


def validate_layer(data, where="layer"):
    """Check the arrays of a ``bincount-layer``; adds ``data["meta"]``. See :func:`load_layer`."""
    keys = set(data) - {"meta"}
    missing = [k for k in KEYS if k not in keys]
    unknown = sorted(keys - set(KEYS))
    if missing or unknown:
        _fail(where, f"missing arrays {missing}, unknown arrays {unknown}; "
                     f"a {FORMAT} file holds exactly {list(KEYS)}")
    meta = read_meta_json(data, where)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        _fail(where, f"format {meta.get('format')!r} version {meta.get('version')!r}; "
                     f"expected {FORMAT!r} version {VERSION}")
    for field in META_INT_FIELDS:
        v = meta.get(field)
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(where, f"meta_json field {field!r} is {v!r}; expected an integer")
    cin, cout, k, n = meta["cin"], meta["cout"], meta["k"], meta["n"]
    if cin < 1 or cout < 1 or k < 1 or k % 2 == 0 or meta["stride"] < 1:
        _fail(where, f"cin={cin}, cout={cout}, k={k}, stride={meta['stride']}; expected "
                     f"positive integers and an odd k")
    if n != k * k * cin:
        _fail(where, f"n = {n} but k*k*cin = {k * k * cin}; expected n = k*k*cin")
    if not (2 <= meta["out_bits"] <= 62 and 0 <= meta["out_frac"] < meta["out_bits"]
            and 2 <= meta["mul_bits"] <= 48 and 2 <= meta["off_bits"] <= 62):
        _fail(where, f"widths out_bits={meta['out_bits']} out_frac={meta['out_frac']} "
                     f"mul_bits={meta['mul_bits']} off_bits={meta['off_bits']} are out of range")
    nbytes = packed_bytes(n)
    wb = np.asarray(data["weight_bits"])
    if wb.dtype != np.uint8 or wb.shape != (cout, nbytes):
        _fail(where, f"weight_bits is {wb.dtype} {wb.shape}; expected uint8 {(cout, nbytes)}")
    if n % 8 and np.any(wb[:, -1] >> (n % 8)):
        _fail(where, f"weight_bits has set bits beyond N = {n} in its last byte; expected 0")
    for key in _VECTOR_KEYS:
        a = np.asarray(data[key])
        if a.dtype != np.int64 or a.shape != (cout,):
            _fail(where, f"{key} is {a.dtype} {a.shape}; expected int64 ({cout},)")
    sh = np.asarray(data["shift"])
    if sh.dtype != np.int64 or sh.shape != ():
        _fail(where, f"shift is {sh.dtype} {sh.shape}; expected an int64 scalar")
    _check_range(where, "threshold", data["threshold"], 0, n + 1, f"thresholds in 0..N+1 (N = {n})")
    out_lo, out_hi = fp.int_range(meta["out_bits"])
    _check_range(where, "hi", data["hi"], out_lo, out_hi, f"{meta['out_bits']}-bit signed outputs")
    _check_range(where, "lo", data["lo"], out_lo, out_hi, f"{meta['out_bits']}-bit signed outputs")
    _check_range(where, "mul", data["mul"], *fp.int_range(meta["mul_bits"]),
                 f"{meta['mul_bits']}-bit signed multipliers")
    _check_range(where, "offset", data["offset"], *fp.int_range(meta["off_bits"]),
                 f"{meta['off_bits']}-bit signed offsets")
    s = int(sh)
    if not 0 <= s <= fp.MAX_SHIFT or s != meta["shift"]:
        _fail(where, f"shift = {s} (meta_json says {meta['shift']}); expected the same value "
                     f"in 0..{fp.MAX_SHIFT}")
    data["meta"] = meta
    return data
