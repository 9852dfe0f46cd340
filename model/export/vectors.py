"""Golden vectors for one output lane (XNOR-popcount + threshold compare / baseline scale).

One vector = one output element of a real, calibrated layer (:mod:`bincount.model.export.probe`):
its N-bit input vector, the N weight bits of its channel, the channel's constants and the
expected integers. Expected values come from the torch-free integer reference
(:func:`bincount.model.export.fixed_point.reference_layer`); :func:`lane_vectors` also checks them
against the torch fixed-point forward (``BinaryConv2d.fixed_outputs``) and stops on a mismatch.

Sampling (fixed by ``seed``): ``channels`` output channels (always including a
negative-gamma channel), output pixels of the first ``vector_images`` probe images; about
``near_fraction`` of the vectors have ``|count - T_c| <= 1`` (count exactly at T, one below,
one above), the rest are drawn uniformly.

Arrays (``V`` vectors, ``nbytes = ceil(N/8)``, bit order of docs/conventions.md): ``act_bits``,
``wgt_bits`` ``uint8 [V, nbytes]``; ``channel``, ``count``, ``threshold``, ``hi``, ``lo``,
``y_binarized``, ``mul``, ``offset``, ``y_baseline``, ``image``, ``row``, ``col`` ``int64 [V]``;
``meta_json``. This module imports torch only inside :func:`lane_vectors`.
"""

import json

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz
from bincount.model.export import fixed_point as fp
from bincount.model.export.bits import im2col_bits, pack_bits, packed_bytes, xnor_popcount
from bincount.model.export.layer_export import BIT_ORDER, layer_arrays
from bincount.model.export.probe import calibrated_layer

__all__ = ["FORMAT", "VERSION", "DEFAULT_IMAGES", "INT_KEYS", "BIT_KEYS", "lane_vectors",
           "vectors_from_layer", "layer_meta_for", "save_lane_vectors", "load_lane_vectors",
           "check_lane_vectors"]

FORMAT = "bincount-lane-vectors"
VERSION = 1
BIT_KEYS = ("act_bits", "wgt_bits")
INT_KEYS = ("channel", "count", "threshold", "hi", "lo", "y_binarized", "mul", "offset",
            "y_baseline", "image", "row", "col")


def _select(rng, counts, thresholds, channels, count, near_fraction):
    """Flat indices into ``counts [I, C, H, W]`` restricted to ``channels``."""
    sub = counts[:, channels]                                      # [I, c, H, W]
    t = thresholds[channels][None, :, None, None]
    shape = sub.shape
    flat_near = np.flatnonzero(np.abs(sub - t).ravel() <= 1)
    n_near = min(len(flat_near), int(round(count * near_fraction)))
    chosen = rng.choice(flat_near, size=n_near, replace=False) if n_near else np.zeros(0, int)
    rest = np.setdiff1d(np.arange(sub.size), chosen)
    n_rest = min(len(rest), count - n_near)
    chosen = np.concatenate([chosen, rng.choice(rest, size=n_rest, replace=False)])
    img, ci, row, col = np.unravel_index(np.sort(chosen), shape)
    return img, np.asarray(channels)[ci], row, col


#: Calibration images per stage width (about 512 or more samples per channel and pixel map).
DEFAULT_IMAGES = {64: 8, 128: 8, 256: 16, 512: 32}


def lane_vectors(cin, count=256, seed=0, data_dir=None, images=None, vector_images=None,
                 channels=16, near_fraction=0.5, check=True):
    """Golden vectors of width ``N = 9 * cin`` from a calibrated ReActNet-18 stage layer.

    ``cin`` is 64, 128, 256 or 512. The layer (``cout = cin``, see
    :func:`bincount.model.export.probe.calibrated_layer`) is calibrated on ``images`` CIFAR-10 test
    images (default ``DEFAULT_IMAGES[cin]``); vectors come from the first ``vector_images`` of
    them (default: the fewest giving at least ``8 * count`` candidate outputs in the sampled
    channels). Returns a dict of numpy arrays (see the module docstring) with ``meta_json``
    holding ``n``, the widths, ``shift``, ``seed`` and the source image indices.
    Deterministic for a given ``seed``.
    """

    if images is None:
        images = DEFAULT_IMAGES.get(cin, 8)
    layer, x, info = calibrated_layer(cin, seed=seed, images=images, data_dir=data_dir)
    return vectors_from_layer(layer, x, info, count=count, seed=seed,
                              vector_images=vector_images, channels=channels,
                              near_fraction=near_fraction, check=check)


def layer_meta_for(layer, info, seed):
    """The metadata that :func:`lane_vectors` and ``export-layer`` give the exported layer."""
    return {"name": f"probe_cin{layer.in_channels}", "seed": int(seed), "source": info}


def vectors_from_layer(layer, x, info, count=256, seed=0, vector_images=None, channels=16,
                       near_fraction=0.5, check=True):
    """Lane vectors of an already calibrated layer (``calibrated_layer``'s ``(layer, x, info)``)."""
    import torch


    cin = layer.in_channels
    n = layer.n
    images = x.shape[0]
    if vector_images is None:
        per_image = min(channels, layer.out_channels) * x.shape[2] * x.shape[3]
        vector_images = min(images, max(1, -(-8 * int(count) // per_image)))
    arrays = layer_arrays(layer, meta=layer_meta_for(layer, info, seed))
    xv = x[:vector_images]
    x_bits = (xv >= 0).numpy().astype(np.uint8)
    counts, y_bin, y_base = fp.reference_layer(x_bits, arrays)       # [I, Cout, H, W]
    if check:
        t_count, t_bin, t_base = layer.fixed_outputs(xv, arrays)
        for name, a, b in (("count", counts, t_count), ("y_binarized", y_bin, t_bin),
                           ("y_baseline", y_base, t_base)):
            if not np.array_equal(a, b.numpy()):
                raise RuntimeError(f"integer reference and torch fixed-point {name} differ")
        with torch.no_grad():
            d = layer.dot(xv).numpy()
        if not np.array_equal(d, 2 * counts - n):
            raise RuntimeError("float dot product and integer popcount differ")

    rng = np.random.default_rng([int(seed), int(cin), 104729])
    cout = layer.out_channels
    negative = [c for c in info.get("negative_gamma_channels", []) if c < cout]
    picked = rng.choice(cout, size=min(channels, cout), replace=False)
    if negative and not set(picked.tolist()) & set(negative):
        picked[0] = negative[int(rng.integers(len(negative)))]
    picked = np.sort(picked)
    img, ch, row, col = _select(rng, counts, arrays["threshold"], picked, int(count),
                                near_fraction)

    k, stride = layer.kernel_size, layer.stride
    act = np.stack([pack_bits(im2col_bits(x_bits[i], k, stride)[r, c]) for i, r, c in
                    zip(img, row, col)]) if len(img) else np.zeros((0, packed_bytes(n)), np.uint8)
    wgt = arrays["weight_bits"][ch]
    cnt = counts[img, ch, row, col]
    if not np.array_equal(xnor_popcount(act, wgt, n), cnt):
        raise RuntimeError("packed lane vectors do not reproduce the reference counts")
    meta = arrays["meta"]
    out = {"act_bits": act, "wgt_bits": np.ascontiguousarray(wgt),
           "channel": ch.astype(np.int64), "count": cnt,
           "threshold": arrays["threshold"][ch], "hi": arrays["hi"][ch], "lo": arrays["lo"][ch],
           "y_binarized": y_bin[img, ch, row, col],
           "mul": arrays["mul"][ch], "offset": arrays["offset"][ch],
           "y_baseline": y_base[img, ch, row, col],
           "image": np.asarray(info["images"], np.int64)[img],
           "row": row.astype(np.int64), "col": col.astype(np.int64)}
    vmeta = {"format": FORMAT, "version": VERSION, "cin": cin, "cout": cout, "k": k,
             "stride": stride, "n": n, "out_bits": meta["out_bits"], "out_frac": meta["out_frac"],
             "mul_bits": meta["mul_bits"], "off_bits": meta["off_bits"],
             "shift": meta["shift"], "seed": int(seed), "count": int(len(ch)),
             "source_images": info["images"][:vector_images],
             "calibration_images": info["images"], "dataset": info["dataset"],
             "probe": info["probe"], "calibration": info["calibration"],
             "channels": [int(c) for c in picked],
             "negative_gamma_channels": negative, "layer_form": layer.form,
             "division_num": layer.division_num, "bit_order": BIT_ORDER,
             "expected_from": "bincount.model.export.fixed_point.reference_layer"}
    out["meta_json"] = np.array(json.dumps(vmeta, sort_keys=True))
    check_lane_vectors(out)
    return out


def save_lane_vectors(path, vectors=None, **kwargs):
    """Write ``vectors`` (or ``lane_vectors(**kwargs)``) to ``path`` atomically; returns them."""
    if vectors is None:
        vectors = lane_vectors(**kwargs)
    vectors = {k: a for k, a in vectors.items() if k != "meta"}
    check_lane_vectors(vectors)
    atomic_savez(path, **vectors)
    return vectors


def check_lane_vectors(v, where="lane vectors"):
    """Check shapes, dtypes and that every expected value follows from the vector (torch-free).

    Returns the parsed metadata; raises :class:`BincountError` on any mismatch.
    """
    try:
        meta = json.loads(str(np.asarray(v["meta_json"])[()]))
    except ValueError as exc:
        raise BincountError(f"{where}: meta_json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise BincountError(f"{where}: expected format {FORMAT!r} version {VERSION}")
    n = meta.get("n")
    if not isinstance(n, int) or n < 1:
        raise BincountError(f"{where}: meta_json n = {n!r}; expected a positive integer")
    nbytes = packed_bytes(n)
    vcount = len(np.asarray(v["channel"]))
    for key in BIT_KEYS:
        a = np.asarray(v[key])
        if a.dtype != np.uint8 or a.shape != (vcount, nbytes):
            raise BincountError(f"{where}: {key} is {a.dtype} {a.shape}; "
                                f"expected uint8 {(vcount, nbytes)}")
    for key in INT_KEYS:
        a = np.asarray(v[key])
        if a.dtype != np.int64 or a.shape != (vcount,):
            raise BincountError(f"{where}: {key} is {a.dtype} {a.shape}; "
                                f"expected int64 ({vcount},)")
    t = np.asarray(v["threshold"])
    if vcount and (t.min() < 0 or t.max() > n + 1):
        raise BincountError(f"{where}: a threshold is outside 0..N+1 (N = {n})")
    cnt = xnor_popcount(v["act_bits"], v["wgt_bits"], n)
    checks = (("count", cnt),
              ("y_binarized", fp.binarized_output(cnt, t, v["hi"], v["lo"])),
              ("y_baseline", fp.baseline_output(cnt, n, v["mul"], v["offset"], meta["shift"],
                                                meta["out_bits"])))
    for key, expect in checks:
        bad = np.flatnonzero(np.asarray(v[key]) != expect)
        if bad.size:
            i = int(bad[0])
            raise BincountError(f"{where}: vector {i}: {key} = {int(v[key][i])} but the "
                                f"integer reference gives {int(expect[i])}")
    return meta


def load_lane_vectors(path):
    """Read and check a ``bincount-lane-vectors`` ``.npz`` (torch-free); adds ``"meta"``."""
    data = load_npz(path, required=("meta_json",) + BIT_KEYS + INT_KEYS)
    data["meta"] = check_lane_vectors(data, where=f"file {str(path)!r}")
    return data
