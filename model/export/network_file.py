"""The ``bincount-network`` ``.npz`` (version 1): layout, atomic save, checked load (torch-free).

The layout is documented in docs/formats.md ("bincount-network"), the arithmetic in
docs/conventions.md ("Whole network"). :func:`load_export` checks everything and raises
:class:`BincountError` with one line that says what was wrong.
"""

import json
from pathlib import Path

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz, read_meta_json
from bincount.model.export.bits import packed_bytes
from bincount.model.export.fixed_point import MAX_SHIFT, int_range
from bincount.model.export.net_format import NetFormat

__all__ = ["FORMAT", "DEFAULT_EXPORT", "VERSION", "BIT_ORDER", "expected_arrays", "validate_export", "load_export",
           "save_export", "export_meta"]

FORMAT = "bincount-network"
#: The project's default network: a trained, hardware-deployable ReActNet-18 at width 0.25
#: (model card: ``networks/README.md``); used by ``bincount generate`` when no ``--export``
#: is given.
DEFAULT_EXPORT = Path(__file__).resolve().parents[2] / "networks" / "reactnet18_w0.25.npz"
VERSION = 1
BIT_ORDER = ("binary layers: tap-major channel-minor, n = (ky*k + kx)*cin + ci; bit 1 = +1; "
             "packed little: element n is bit n%8 of byte n//8")
ARCHS = ("reactnet", "bireal")
FORMS = ("baseline", "binarized")
SHORTCUTS = ("real", "concat")
SLOPES = ("trained", "pow2")
POW2_EXP_RANGE = (-15, 3)


def _fail(where, msg):
    raise BincountError(f"{where}: {msg}")


def export_meta(data):
    """The parsed metadata of an export dict (``data["meta"]`` or its ``meta_json``)."""
    if isinstance(data.get("meta"), dict):
        return data["meta"]
    return json.loads(str(np.asarray(data["meta_json"])[()]))


def expected_arrays(meta):
    """``{key: (dtype, shape, (lo, hi) or None)}`` of every array an export with ``meta`` holds."""
    f = NetFormat.from_dict(meta["formats"])
    res = int_range(f.res_bits)
    rmul, roff = int_range(f.real_mul_bits), int_range(f.real_off_bits)
    rw = int_range(f.real_w_bits)
    i64, u8 = np.dtype(np.int64), np.dtype(np.uint8)
    out = {"meta_json": (np.dtype(str), (), None),
           "input_lut": (i64, (3, 256), int_range(f.in_bits))}
    st = meta["stem"]
    out["stem.weight"] = (i64, (st["cout"], st["cin"], st["k"], st["k"]), rw)
    out["stem.mul"] = (i64, (st["cout"],), rmul)
    out["stem.offset"] = (i64, (st["cout"],), roff)
    out["stem.shift"] = (i64, (), (0, MAX_SHIFT))
    for layer in meta["layers"]:
        p, cin, cout, n = layer["name"] + ".", layer["cin"], layer["cout"], layer["n"]
        if layer["rsign"]:
            out[p + "rsign_bias"] = (i64, (cin,), res)
        out[p + "weight_bits"] = (u8, (cout, packed_bytes(n)), None)
        if layer["form"] == "binarized":
            out[p + "threshold"] = (i64, (cout,), (0, n + 1))
            out[p + "hi"] = (i64, (cout,), res)
            out[p + "lo"] = (i64, (cout,), res)
        else:
            out[p + "mul"] = (i64, (cout,), int_range(f.mul_bits))
            out[p + "offset"] = (i64, (cout,), int_range(f.off_bits))
            out[p + "shift"] = (i64, (), (0, MAX_SHIFT))
        if layer["downsample"] == "real":
            out[p + "down.weight"] = (i64, (cout, cin), rw)
            out[p + "down.mul"] = (i64, (cout,), rmul)
            out[p + "down.offset"] = (i64, (cout,), roff)
            out[p + "down.shift"] = (i64, (), (0, MAX_SHIFT))
        if layer["rprelu"] is not None:
            out[p + "rprelu.bias0"] = (i64, (cout,), res)
            out[p + "rprelu.bias1"] = (i64, (cout,), res)
            if layer["rprelu"] == "trained":
                out[p + "rprelu.slope"] = (i64, (cout,), int_range(f.slope_bits))
            else:
                out[p + "rprelu.slope_exp"] = (i64, (cout,), POW2_EXP_RANGE)
                out[p + "rprelu.slope_neg"] = (i64, (cout,), (0, 1))
    hd = meta["head"]
    out["head.weight"] = (i64, (hd["classes"], hd["cin"]), rw)
    out["head.mul"] = (i64, (hd["classes"],), rmul)
    out["head.offset"] = (i64, (hd["classes"],), roff)
    out["head.shift"] = (i64, (), (0, MAX_SHIFT))
    return out


def _int_field(where, d, key, lo=0):
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        _fail(where, f"meta_json field {key!r} is {v!r}; expected an integer >= {lo}")
    return v


def _check_meta(where, meta):
    if not isinstance(meta, dict):
        _fail(where, "meta_json must hold a JSON object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        _fail(where, f"format {meta.get('format')!r} version {meta.get('version')!r}; "
                     f"expected {FORMAT!r} version {VERSION}")
    for key in ("formats", "stem", "head", "input"):
        if not isinstance(meta.get(key), dict):
            _fail(where, f"meta_json field {key!r} must be an object")
    try:
        NetFormat.from_dict(meta["formats"])
    except BincountError as exc:
        _fail(where, str(exc))
    if meta.get("arch") not in ARCHS:
        _fail(where, f"arch {meta.get('arch')!r}; expected one of {ARCHS}")
    st = meta["stem"]
    for key in ("cin", "cout", "k", "shift", "size"):
        _int_field(where, st, key, 0 if key == "shift" else 1)
    if st["cin"] != 3 or st["k"] % 2 == 0:
        _fail(where, f"stem cin={st['cin']} k={st['k']}; expected 3 input channels, odd k")
    inp = meta["input"]
    for key in ("channels", "size"):
        _int_field(f"{where}: input", inp, key, 1)
    if inp["channels"] != st["cin"] or inp["size"] != st["size"]:
        _fail(where, f"input channels={inp['channels']} size={inp['size']}; the stem takes "
                     f"{st['cin']} channels at {st['size']}x{st['size']}")
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail(where, "meta_json field 'layers' must be a non-empty list")
    cin, size = st["cout"], st["size"]
    names = set()
    for i, layer in enumerate(layers):
        lw = f"{where}: layer {i}"
        if not isinstance(layer, dict):
            _fail(where, f"layer {i} must be an object")
        name = layer.get("name")
        if not isinstance(name, str) or not name or name in names or "/" in name:
            _fail(lw, f"name {name!r} must be a unique non-empty string")
        names.add(name)
        for key in ("cin", "cout", "k", "stride", "n", "in_size", "out_size", "pad_bit"):
            _int_field(lw, layer, key, 0 if key == "pad_bit" else 1)
        if layer["cin"] != cin or layer["in_size"] != size:
            _fail(lw, f"cin={layer['cin']} in_size={layer['in_size']}; the previous layer "
                      f"gives {cin} channels at {size}x{size}")
        k, s = layer["k"], layer["stride"]
        if k % 2 == 0 or layer["n"] != k * k * layer["cin"] or layer["pad_bit"] > 1:
            _fail(lw, f"k={k} n={layer['n']} pad_bit={layer['pad_bit']}; expected odd k, "
                      f"n = k*k*cin, pad_bit 0 or 1")
        if layer["out_size"] != (size + 2 * (k // 2) - k) // s + 1:
            _fail(lw, f"out_size={layer['out_size']} does not follow from in_size and stride")
        if layer.get("form") not in FORMS:
            _fail(lw, f"form {layer.get('form')!r}; expected one of {FORMS}")
        ds = layer.get("downsample")
        if ds is None:
            if s != 1 or layer["cout"] != layer["cin"]:
                _fail(lw, "a layer that changes stride or channels needs a downsample shortcut")
        elif ds not in SHORTCUTS or s not in (1, 2) or (s == 2 and size % 2):
            _fail(lw, f"downsample {ds!r} with stride {s} at size {size}; expected one of "
                      f"{SHORTCUTS}, stride 1 or 2, even size")
        if not isinstance(layer.get("rsign"), bool):
            _fail(lw, "field 'rsign' must be true or false")
        if layer.get("rprelu") not in (None, *SLOPES):
            _fail(lw, f"rprelu {layer.get('rprelu')!r}; expected null or one of {SLOPES}")
        cin, size = layer["cout"], layer["out_size"]
    hd = meta["head"]
    for key in ("cin", "classes", "pool", "shift"):
        _int_field(where, hd, key, 0 if key == "shift" else 1)
    if hd["cin"] != cin or hd["pool"] != size * size:
        _fail(where, f"head cin={hd['cin']} pool={hd['pool']}; the last layer gives {cin} "
                     f"channels at {size}x{size}")


def validate_export(data, where="network export"):
    """Check an export dict (arrays + ``meta_json``); adds ``data["meta"]``; returns ``data``."""
    meta = read_meta_json(data, where)
    try:
        _check_meta(where, meta)
        expect = expected_arrays(meta)
    except (KeyError, TypeError) as exc:
        _fail(where, f"meta_json is incomplete ({type(exc).__name__}: {exc})")
    keys = set(data) - {"meta"}
    missing = sorted(set(expect) - keys)
    unknown = sorted(keys - set(expect))
    if missing or unknown:
        _fail(where, f"missing arrays {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                     f"unknown arrays {unknown[:4]}{'...' if len(unknown) > 4 else ''}; "
                     f"expected exactly the arrays its meta_json describes")
    for key, (dtype, shape, rng) in expect.items():
        if key == "meta_json":
            continue
        a = np.asarray(data[key])
        if a.dtype != dtype or a.shape != shape:
            _fail(where, f"{key} is {a.dtype} {a.shape}; expected {dtype} {shape}")
        if rng is not None and a.size:
            bad = np.flatnonzero((a < rng[0]) | (a > rng[1]))
            if bad.size:
                _fail(where, f"{key} holds {int(a.ravel()[bad[0]])}, outside {rng[0]}..{rng[1]}")
    shifts = [("stem.shift", meta["stem"]["shift"]), ("head.shift", meta["head"]["shift"])]
    for layer in meta["layers"]:
        n, p = layer["n"], layer["name"] + "."
        wb = np.asarray(data[p + "weight_bits"])
        if n % 8 and np.any(wb[:, -1] >> (n % 8)):
            _fail(where, f"{p}weight_bits has set bits beyond N = {n}; expected 0")
        if layer["form"] == "baseline":
            shifts.append((p + "shift", layer.get("shift")))
        if layer["downsample"] == "real":
            shifts.append((p + "down.shift", layer.get("down_shift")))
    for key, value in shifts:
        if int(np.asarray(data[key])) != value:
            _fail(where, f"{key} = {int(np.asarray(data[key]))} but meta_json says {value!r}")
    data["meta"] = meta
    return data


def save_export(path, arrays):
    """Validate ``arrays`` (with ``meta_json``) and write them atomically to ``path``."""
    validate_export(arrays, where="network export")
    atomic_savez(path, **{k: v for k, v in arrays.items() if k != "meta"})
    return arrays


def load_export(path):
    """Read and check a ``bincount-network`` ``.npz``; returns its arrays plus ``"meta"``."""
    data = load_npz(path, required=("meta_json",))
    return validate_export(data, where=f"file {str(path)!r}")
