"""Golden per-layer tensors for hardware tests of whole binary layers ("engines").

A full-width (``width_mult = 1.0``) ReActNet-18 with randomised but calibrated parameters
(:func:`bincount.model.nets.calibrate.calibrate_random`), its BatchNorms calibrated on **real**
CIFAR-10 test images, is exported to integers (``export_arrays``) and run through the torch-free
integer reference (``network_reference.golden``) on other test images. Two forms:

=============  ========================  ============  ==========
form           variant                   shortcut      slopes
=============  ========================  ============  ==========
``binarized``  ``qat_cn_times_alpha``    ``concat``    ``pow2``
``baseline``   ``baseline``              ``concat``    ``trained``
=============  ========================  ============  ==========

API (torch is imported only by :func:`engine_golden` / :func:`save_engine_golden`)::

    export, gold = engine_golden("binarized", seed=0)      # in memory
    save_engine_golden(path, "baseline", seed=3)           # one .npz, written atomically
    export, gold = load_engine_golden(path)                # checked
    case = layer_case((export, gold), "stage2.conv1")      # or layer_case(path, ...)

The result is a pair of dicts in the two existing formats (docs/formats.md):

* ``export``: the ``bincount-network`` arrays exactly as :func:`export_arrays` returns them
  (``"meta"`` holds the parsed ``meta_json``);
* ``gold``: the ``bincount-golden`` arrays exactly as :func:`network_reference.golden` returns
  them (leading axis = test image), plus ``"meta"`` (its parsed ``meta_json``).

Both metadata dicts carry the recipe under ``"source"`` (:func:`engine_meta`): form, seed,
network, variant, flags, the calibration image indices and labels, the test image indices and
labels.

Images (fixed by the seed, :func:`image_indices`): ``calib_images + test_images`` distinct
CIFAR-10 test indices among the bundled sample's (:func:`bincount.model.data.cifar.sample_indices`); the first ``calib_images`` (sorted) calibrate the network (normalised
floats), the others (sorted, never among the calibration ones) give the golden tensors (uint8
pixels through the export's ``input_lut``, as ``bincount golden`` does).

Negative BN scales: :func:`calibrate_random` negates the BN scale of every binary-conv channel
``c % 4 == 3`` (``hi < lo`` / ``M < 0`` channels), and :func:`check_sanity` insists on them.

File layout (``bincount-engine-golden`` version 1): ``meta_json`` (the :func:`engine_meta`
dict), every export array as ``export/<key>`` and every golden array as ``golden/<key>`` (their
own ``meta_json`` included). :func:`load_engine_golden` checks the file, both parts (with the
export's and the golden format's own checks), their agreement with each other and with the
recipe, the sanity rules of :func:`check_sanity`, and (``check=True``) recomputes every golden
tensor from the export with the integer reference.

:func:`layer_case` gives one binary layer's test case: its export metadata, its constants under
their export names without the ``"{L}."`` prefix, and its golden tensors of one image.
"""

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz, read_meta_json
from bincount.model.nets.calibrate import calibrate_random
from bincount.model.data.cifar import load_test_images, normalize, sample_indices
from bincount.model.export.network_export import export_arrays
from bincount.model.export.network_file import validate_export
from bincount.model.export.network_reference import (GOLDEN_FORMAT, GOLDEN_VERSION, NetworkReference,
                                              golden)
from bincount.model.nets.networks import build_network

__all__ = ["FORMAT", "VERSION", "FORMS", "NETWORK", "WIDTH_MULT", "LAYER_TENSORS",
           "image_indices", "engine_meta", "calibrate", "engine_golden",
           "check_sanity", "save_engine_golden", "load_engine_golden", "layer_case"]

FORMAT = "bincount-engine-golden"
VERSION = 1
NETWORK = "reactnet18"
WIDTH_MULT = 1.0
#: form -> (variant, build_network flags).
FORMS = {"binarized": ("qat_cn_times_alpha", {"shortcut": "concat", "slopes": "pow2"}),
         "baseline": ("baseline", {"shortcut": "concat", "slopes": "trained"})}
#: Golden tensors of one binary layer ``{L}.<name>`` (see ``network_reference.TENSOR_DOC``).
LAYER_TENSORS = ("input", "act_bits", "count", "conv_out", "shortcut", "sum", "output")
EXPORT_PREFIX = "export/"
GOLDEN_PREFIX = "golden/"
CALIBRATION_RECIPE = ("calibrate_random(model, images, seed): parameters drawn from the seed, "
                      "BN statistics = batch statistics of the calibration images, count "
                      "thresholds at per-channel quantiles in [0.3, 0.7]; BN scales of binary-conv "
                      "channels c % 4 == 3 negative")


def _form_spec(form):
    if not isinstance(form, str) or form not in FORMS:
        raise BincountError(f"engine golden form {form!r}; expected one of {', '.join(FORMS)}")
    variant, flags = FORMS[form]
    return variant, dict(flags)


def _int_arg(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BincountError(f"{name} {value!r}; expected an integer")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise BincountError(f"{name} {value}; expected an integer {rng}")
    return value


def _check_args(seed, calib_images, test_images):
    seed = _int_arg("seed", seed, 0)
    pool = len(sample_indices())
    calib_images = _int_arg("calib_images", calib_images, 2, pool - 1)
    test_images = _int_arg("test_images", test_images, 1, pool - calib_images)
    return seed, calib_images, test_images


def image_indices(seed, calib_images=16, test_images=1):
    """``(calibration, test)`` CIFAR-10 test-set indices of ``seed``: disjoint sorted lists."""
    seed, calib_images, test_images = _check_args(seed, calib_images, test_images)
    pool = sample_indices()
    rng = np.random.default_rng([seed, 0xE6])
    idx = [pool[int(i)] for i in rng.choice(len(pool), size=calib_images + test_images,
                                            replace=False)]
    return sorted(idx[:calib_images]), sorted(idx[calib_images:])


def engine_meta(form, seed, calib_idx, calib_labels, test_idx, test_labels):
    """The recipe of one engine golden set (the file's ``meta_json`` and both parts' source)."""
    variant, flags = _form_spec(form)
    return {"format": FORMAT, "version": VERSION, "form": form, "seed": int(seed),
            "network": NETWORK, "variant": variant, "width_mult": WIDTH_MULT, "flags": flags,
            "dataset": "CIFAR-10 test set",
            "calibration": {"recipe": CALIBRATION_RECIPE,
                            "images": [int(i) for i in calib_idx],
                            "labels": [int(v) for v in calib_labels]},
            "test": {"images": [int(i) for i in test_idx],
                     "labels": [int(v) for v in test_labels]}}


@contextlib.contextmanager
def torch_context(seed):
    """One torch thread (fast for one batch, and deterministic) and a private seeded RNG."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            yield
    finally:
        torch.set_num_threads(threads)


def calibrate(model, images, seed):
    """:func:`bincount.model.nets.calibrate.calibrate_random` (kept as the one place this module
    calibrates, so the recipe in the metadata names it)."""

    return calibrate_random(model, images, seed)


def _layer_names(export):
    return [layer["name"] for layer in export["meta"]["layers"]]


def check_sanity(export, gold):
    """Raise :class:`BincountError` unless the golden set exercises every binary layer.

    For every layer and image: ``count`` not constant, ``act_bits`` holding both 0 and 1;
    for every layer: some channel with ``hi < lo`` (binarized) or ``mul < 0`` (baseline).
    """
    b = gold["input"].shape[0]
    for layer in export["meta"]["layers"]:
        name = layer["name"]
        p = name + "."
        for i in range(b):
            count = gold[p + "count"][i]
            if count.min() == count.max():
                raise BincountError(f"engine golden: {name} count of image {i} is constant "
                                    f"({int(count.min())}); the calibration is degenerate")
            bits = gold[p + "act_bits"][i]
            if bits.min() == bits.max():
                raise BincountError(f"engine golden: {name} act_bits of image {i} are all "
                                    f"{int(bits.min())}; the calibration is degenerate")
        if layer["form"] == "binarized":
            if not np.any(export[p + "hi"] < export[p + "lo"]):
                raise BincountError(f"engine golden: {name} has no channel with hi < lo "
                                    f"(negative BN scale)")
        elif not np.any(export[p + "mul"] < 0):
            raise BincountError(f"engine golden: {name} has no channel with mul < 0 "
                                f"(negative BN scale)")


def _with_meta(gold):
    gold = dict(gold)
    gold["meta"] = json.loads(str(np.asarray(gold["meta_json"])[()]))
    return gold


def engine_golden(form, seed=0, calib_images=16, test_images=1, data_dir=None):
    """``(export, gold)`` of ``form`` (``"binarized"`` or ``"baseline"``); see the module
    docstring. Deterministic for a given ``seed`` (torch runs on one thread, with its global
    RNG state and thread count restored afterwards). ``data_dir``: the CIFAR-10 folder
    (default: as :func:`bincount.model.data.cifar.find_data_dir`)."""
    variant, flags = _form_spec(form)
    seed, calib_images, test_images = _check_args(seed, calib_images, test_images)

    calib_idx, test_idx = image_indices(seed, calib_images, test_images)
    pixels, labels = load_test_images(indices=calib_idx + test_idx, data_dir=data_dir)
    c = calib_images
    meta = engine_meta(form, seed, calib_idx, labels[:c], test_idx, labels[c:])
    with torch_context(seed):
        model = build_network(NETWORK, variant, WIDTH_MULT, **flags)
        calibrate(model, normalize(pixels[:c]), seed)
        export = export_arrays(model, source=meta)
    gold = _with_meta(golden(export, pixels[c:], indices=test_idx,
                             labels=[int(v) for v in labels[c:]], source=meta))
    check_sanity(export, gold)
    return export, gold


def _file_arrays(export, gold):
    meta = export["meta"]["source"]
    arrays = {"meta_json": np.array(json.dumps(meta, sort_keys=True))}
    arrays.update({EXPORT_PREFIX + k: v for k, v in export.items() if k != "meta"})
    arrays.update({GOLDEN_PREFIX + k: v for k, v in gold.items() if k != "meta"})
    return arrays


def save_engine_golden(path, form, seed=0, calib_images=16, test_images=1, data_dir=None):
    """Make :func:`engine_golden` and write it atomically to ``path`` (``.npz``, no pickles).
    Returns ``(export, gold)``."""
    if Path(path).is_dir():
        raise BincountError(f"output {str(path)!r} is a directory; expected a file name")
    export, gold = engine_golden(form, seed, calib_images, test_images, data_dir)
    atomic_savez(path, **_file_arrays(export, gold))
    return export, gold


def _fail(where, msg):
    raise BincountError(f"{where}: {msg}")


def _check_engine_meta(where, meta):
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        _fail(where, f"format {meta.get('format')!r} version {meta.get('version')!r}; "
                     f"expected {FORMAT!r} version {VERSION}")
    form = meta.get("form")
    if form not in FORMS:
        _fail(where, f"form {form!r}; expected one of {', '.join(FORMS)}")
    variant, flags = FORMS[form]
    if (meta.get("network"), meta.get("variant"), meta.get("width_mult"), meta.get("flags")) \
            != (NETWORK, variant, WIDTH_MULT, flags):
        _fail(where, f"network {meta.get('network')!r} variant {meta.get('variant')!r} width "
                     f"{meta.get('width_mult')!r} flags {meta.get('flags')!r}; expected "
                     f"{NETWORK!r} {variant!r} {WIDTH_MULT} {flags} for form {form!r}")
    try:
        calib, test = meta["calibration"]["images"], meta["test"]["images"]
        ok = (len(meta["calibration"]["labels"]) == len(calib)
              and len(meta["test"]["labels"]) == len(test))
    except (KeyError, TypeError):
        _fail(where, "meta_json lacks calibration / test image indices and labels")
    if not ok or not test or set(calib) & set(test):
        _fail(where, "calibration and test images must be disjoint, each with a label, and "
                     "there must be at least one test image")


def _expected_tensors(export):
    names = ["input", "stem.acc", "stem.output"]
    for name in _layer_names(export):
        names += [f"{name}.{t}" for t in LAYER_TENSORS]
    return names + ["head.pool_sum", "head.acc", "logits", "prediction"]


def _check_golden(where, gold, export, meta):

    gm = read_meta_json(gold, where)
    if gm.get("format") != GOLDEN_FORMAT or gm.get("version") != GOLDEN_VERSION:
        _fail(where, f"format {gm.get('format')!r} version {gm.get('version')!r}; expected "
                     f"{GOLDEN_FORMAT!r} version {GOLDEN_VERSION}")
    tensors = gm.get("tensors")
    expect = _expected_tensors(export)
    if not isinstance(tensors, dict) or sorted(tensors) != sorted(expect):
        _fail(where, "meta_json 'tensors' does not list exactly the tensors of the export's "
                     "layers")
    keys = set(gold) - {"meta_json"}
    missing, unknown = sorted(set(expect) - keys), sorted(keys - set(expect))
    if missing or unknown:
        _fail(where, f"missing arrays {missing[:4]}, unknown arrays {unknown[:4]}")
    if gm.get("export_meta") != export["meta"]:
        _fail(where, "its export_meta differs from the export part's metadata")
    if gm.get("source") != meta:
        _fail(where, "its source differs from the file's meta_json")
    b = gm.get("images")
    test = meta["test"]
    if b != len(test["images"]) or gm.get("image_indices") != test["images"] \
            or gm.get("labels") != test["labels"]:
        _fail(where, "its images, indices or labels differ from the file's meta_json")
    for key in expect:
        a = gold[key]
        dtype = np.dtype(np.uint8) if key.endswith(".act_bits") else np.dtype(np.int64)
        shape = (b, *tensors[key].get("shape", []))
        if a.dtype != dtype or a.shape != shape:
            _fail(where, f"{key} is {a.dtype} {a.shape}; expected {dtype} {shape}")
    gold["meta"] = gm
    return gold


def _recompute(where, export, gold):

    logits, t = NetworkReference(export).run(gold["input"], tensors=True)
    t["prediction"] = np.argmax(logits, axis=1)
    for key, value in t.items():
        if not np.array_equal(np.asarray(value), gold[key]):
            _fail(where, f"{key} differs from the integer reference of the export part")


def load_engine_golden(path, check=True):
    """Read and check a ``bincount-engine-golden`` ``.npz``; returns ``(export, gold)``.

    ``check``: also recompute every golden tensor from the export (a fraction of a second per
    image). Any problem raises :class:`BincountError` with one line.
    """
    data = load_npz(path, required=("meta_json",))
    where = f"file {str(path)!r}"
    meta = read_meta_json(data, where)
    _check_engine_meta(where, meta)
    export = {k[len(EXPORT_PREFIX):]: v for k, v in data.items() if k.startswith(EXPORT_PREFIX)}
    gold = {k[len(GOLDEN_PREFIX):]: v for k, v in data.items() if k.startswith(GOLDEN_PREFIX)}
    other = sorted(k for k in data if k != "meta_json" and not k.startswith(EXPORT_PREFIX)
                   and not k.startswith(GOLDEN_PREFIX))
    if other:
        _fail(where, f"unknown arrays {other[:4]}; expected meta_json, {EXPORT_PREFIX}* and "
                     f"{GOLDEN_PREFIX}*")
    if not export or not gold:
        _fail(where, f"lacks the {'export' if not export else 'golden'} part; expected "
                     f"{EXPORT_PREFIX}* and {GOLDEN_PREFIX}* arrays")

    export = validate_export(export, where=f"{where} (export part)")
    if export["meta"].get("source") != meta:
        _fail(where, "the export part's source differs from the file's meta_json")
    if {layer["form"] for layer in export["meta"]["layers"]} != {meta["form"]}:
        _fail(where, f"the export's layers are not all of form {meta['form']!r}")
    gold = _check_golden(f"{where} (golden part)", gold, export, meta)
    try:
        check_sanity(export, gold)
    except BincountError as exc:
        _fail(where, str(exc))
    if check:
        _recompute(f"{where} (golden part)", export, gold)
    return export, gold


def layer_case(data, layer_name, image=0):
    """Everything a hardware test of binary layer ``layer_name`` needs, for test image ``image``.

    ``data``: ``(export, gold)`` from :func:`engine_golden` / :func:`load_engine_golden`, or the
    path of a saved file. Returns a dict:

    * ``"name"`` (str), ``"meta"``: the layer's export metadata (``name``, ``cin``, ``cout``,
      ``k``, ``stride``, ``n``, ``in_size``, ``out_size``, ``pad_bit``, ``form``, ``rsign``,
      ``downsample``, ``rprelu``, ``shift``, ...), ``"formats"``: the ``NetFormat`` fields
      (``res_bits``, ``res_frac``, ``slope_frac``, ...), ``"image_index"`` / ``"label"``: the
      CIFAR-10 test index and label of the image (ints);
    * the layer's constants under their export names without ``"{L}."``, exactly as exported:
      ``weight_bits`` ``uint8 [Cout, ceil(N/8)]``; ``rsign_bias`` ``int64 [Cin]``;
      ``threshold``, ``hi``, ``lo`` ``int64 [Cout]`` (binarized) or ``mul``, ``offset``
      ``int64 [Cout]`` and ``shift`` ``int64 []`` (baseline); ``rprelu.bias0``,
      ``rprelu.bias1`` and ``rprelu.slope_exp``, ``rprelu.slope_neg`` (pow2) or
      ``rprelu.slope`` (trained), ``int64 [Cout]``;
    * the golden tensors of the image: ``input`` ``int64 [Cin, H, W]``, ``act_bits``
      ``uint8 [Cin, H, W]``, ``count``, ``conv_out``, ``shortcut``, ``sum``, ``output``
      ``int64 [Cout, Ho, Wo]``.
    """
    if isinstance(data, (str, os.PathLike)):
        data = load_engine_golden(data)
    if not (isinstance(data, tuple) and len(data) == 2
            and all(isinstance(d, dict) and "meta" in d for d in data)):
        raise BincountError("layer_case expects the (export, gold) pair of engine_golden / "
                            "load_engine_golden, or the path of an engine golden file")
    export, gold = data
    names = _layer_names(export)
    if layer_name not in names:
        raise BincountError(f"unknown layer {layer_name!r}; expected one of {', '.join(names)}")
    b = gold["input"].shape[0]
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)) \
            or not 0 <= image < b:
        raise BincountError(f"image {image!r}; the golden set holds images 0..{b - 1}")
    image = int(image)
    layer = dict(export["meta"]["layers"][names.index(layer_name)])
    gm = gold["meta"]
    labels = gm.get("labels")
    case = {"name": layer_name, "meta": layer, "formats": dict(export["meta"]["formats"]),
            "image_index": int(gm["image_indices"][image]),
            "label": None if labels is None else int(labels[image])}
    p = layer_name + "."
    case.update({k[len(p):]: np.asarray(v) for k, v in export.items() if k.startswith(p)})
    case.update({t: np.asarray(gold[p + t][image]) for t in LAYER_TENSORS})
    return case
