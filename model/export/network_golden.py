"""Golden sets for whole-network hardware tests at a small width.

The recipe of :mod:`bincount.model.export.engine_golden` (a randomised ReActNet-18 calibrated on real
CIFAR-10 test images, both forms with the concat shortcut, exported to integers and run through
the integer reference on other test images) at any ``width_mult``, so that the whole network
(stem, 16 binary blocks, head) is small enough to simulate in a test::

    export, gold = network_golden("binarized", width_mult=0.0625, seed=1, test_images=2)
    save_network_golden(path, ...) / load_network_golden(path)

``gold`` is a ``bincount-golden`` dict (leading axis = test image) plus ``"pixels"``: the
test images' ``uint8 [B, 32, 32, 3]`` pixels, the bytes the stem engine takes. File layout
(``bincount-network-golden`` version 1): ``meta_json`` (the recipe), ``export/<key>`` and
``golden/<key>`` as in ``bincount-engine-golden``; reading checks the export and recomputes the
golden tensors from it.
"""

import json

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz, read_meta_json
from bincount.model.data.cifar import load_test_images, normalize
from bincount.model.export.engine_golden import FORMS, NETWORK, calibrate, image_indices, torch_context
from bincount.model.export.network_export import export_arrays
from bincount.model.export.network_file import load_export, validate_export
from bincount.model.export.network_reference import NetworkReference, golden, quantize_input
from bincount.model.nets.networks import build_network

__all__ = ["FORMAT", "VERSION", "network_golden", "export_golden", "save_network_golden",
           "load_network_golden"]

FORMAT = "bincount-network-golden"
VERSION = 1


def network_golden(form, width_mult=0.0625, seed=1, calib_images=16, test_images=2,
                   data_dir=None):
    """``(export, gold)`` of ``form`` at ``width_mult`` (module docstring); deterministic."""
    if form not in FORMS:
        raise BincountError(f"network golden form {form!r}; expected one of {', '.join(FORMS)}")
    variant, flags = FORMS[form]

    calib_idx, test_idx = image_indices(seed, calib_images, test_images)
    pixels, labels = load_test_images(indices=calib_idx + test_idx, data_dir=data_dir)
    c = calib_images
    meta = {"format": FORMAT, "version": VERSION, "form": form, "seed": int(seed),
            "network": NETWORK, "variant": variant, "width_mult": float(width_mult),
            "flags": dict(flags), "dataset": "CIFAR-10 test set",
            "calibration": {"images": [int(i) for i in calib_idx],
                            "labels": [int(v) for v in labels[:c]]},
            "test": {"images": [int(i) for i in test_idx],
                     "labels": [int(v) for v in labels[c:]]}}
    with torch_context(seed):
        model = build_network(NETWORK, variant, width_mult, **flags)
        calibrate(model, normalize(pixels[:c]), seed)
        export = export_arrays(model, source=meta)
    gold = dict(golden(export, pixels[c:], indices=test_idx,
                       labels=[int(v) for v in labels[c:]], source=meta))
    gold["pixels"] = np.ascontiguousarray(pixels[c:]).astype(np.uint8)
    gold["meta"] = json.loads(str(np.asarray(gold["meta_json"])[()]))
    return export, gold


def export_golden(export_path, seed=1, test_images=2, data_dir=None):
    """``(export, gold)`` of a given export (e.g. the project's trained default network) on
    the test images that :func:`network_golden` would use for ``seed`` (no calibration)."""
    export = load_export(export_path)
    _, test_idx = image_indices(seed, 16, test_images)
    pixels, labels = load_test_images(indices=test_idx, data_dir=data_dir)
    meta = {"format": FORMAT, "version": VERSION, "form": export["meta"]["form"],
            "seed": int(seed), "export": str(getattr(export_path, "name", export_path)),
            "dataset": "CIFAR-10 test set",
            "test": {"images": [int(i) for i in test_idx], "labels": [int(v) for v in labels]}}
    export = dict(export)
    export["meta_json"] = np.array(json.dumps(dict(export["meta"], source=meta), sort_keys=True))
    export = validate_export({k: v for k, v in export.items() if k != "meta"})
    gold = dict(golden(export, pixels, indices=test_idx, labels=[int(v) for v in labels],
                       source=meta))
    gold["pixels"] = np.ascontiguousarray(pixels).astype(np.uint8)
    gold["meta"] = json.loads(str(np.asarray(gold["meta_json"])[()]))
    return export, gold


def save_network_golden(path, form, width_mult=0.0625, seed=1, calib_images=16, test_images=2,
                        data_dir=None, export_path=None):
    """Make :func:`network_golden` (or, with ``export_path``, :func:`export_golden`) and write
    it atomically to ``path``; returns it."""
    if export_path is not None:
        export, gold = export_golden(export_path, seed, test_images, data_dir)
    else:
        export, gold = network_golden(form, width_mult, seed, calib_images, test_images,
                                      data_dir)
    arrays = {"meta_json": np.array(json.dumps(export["meta"]["source"], sort_keys=True))}
    arrays.update({"export/" + k: v for k, v in export.items() if k != "meta"})
    arrays.update({"golden/" + k: v for k, v in gold.items() if k != "meta"})
    atomic_savez(path, **arrays)
    return export, gold


def load_network_golden(path, check=True):
    """Read a ``bincount-network-golden`` file: ``(export, gold)``; with ``check`` the golden
    tensors are recomputed from the export by the integer reference."""

    data = load_npz(path, required=("meta_json",))
    where = f"file {str(path)!r}"
    meta = read_meta_json(data, where)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise BincountError(f"{where}: not a {FORMAT} version {VERSION} file")
    export = validate_export({k[7:]: v for k, v in data.items() if k.startswith("export/")},
                             where=f"{where} (export part)")
    gold = {k[7:]: v for k, v in data.items() if k.startswith("golden/")}
    if "pixels" not in gold or "logits" not in gold:
        raise BincountError(f"{where}: lacks the golden part's pixels or logits")
    gold["meta"] = read_meta_json(gold, f"{where} (golden part)")
    if check:
        if not np.array_equal(quantize_input(gold["pixels"], export), gold["input"]):
            raise BincountError(f"{where}: the pixels do not give the golden input")
        logits, t = NetworkReference(export).run(gold["input"], tensors=True)
        t["prediction"] = np.argmax(logits, axis=1)
        for key, value in t.items():
            if not np.array_equal(np.asarray(value), gold[key]):
                raise BincountError(f"{where}: {key} differs from the integer reference")
    return export, gold
