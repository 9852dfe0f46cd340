"""cocotb testbench of the whole-network engine: image bytes in, class and logits out.

For each form (binarized counting, multiply baseline) a ReActNet-18 at width 0.0625 (stem
C0 = 4, stages of 4 / 8 / 16 / 32 channels, concat shortcuts) is calibrated on real CIFAR-10
test images and run by the integer reference on two other test images
(:mod:`bincount.model.export.network_golden`). The engine (:class:`~bincount.gateware.network_top.
NetworkTop`, observation taps on) takes both images' bytes back to back with random input gaps
and random stalls on ``o``; the predicted class and all logits of each image are compared
exactly. On a mismatch the taps (stem output, every stage's output) are compared too, so the
message names the first part that differs.

Cycles: the interval between the two results is the pipeline's cycles per image; it must be
within 1.10x the slowest part's ideal cycles (``manifest["ideal_cycles"]``). Results go to
``network_results.json`` in the build folder; the interval of a passed run is recorded in the
build store (:func:`bincount.hw.measured_cycles.record_network_cycles`), where ``bincount
report --network`` finds it for the same network and knobs.

The binarized form runs in the default suite; with ``BINCOUNT_FULL=1`` also the baseline form
(a second Verilator build), the project's trained default network (``networks/reactnet18_w0.25.npz``,
width 0.25, at the knobs ``bincount generate network`` picks, on 8 test images), and the two
designs of ``bincount report --network`` at its fold (``report-binarized``: the default network;
``report-baseline``: the calibrated baseline network of the same width that the report builds),
so that the report quotes measured cycles per image. ``BINCOUNT_STALL`` sets the gap / stall probability (default 0.3).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from bincount.gateware.block_params import to_beats

from . import simlib
from .engine_sim import start_stream_engine

WIDTH = 0.0625
KNOBS = {"lanes": 4, "bits_per_cycle": 4}
#: The default network at the knobs `bincount generate network` picks by itself.
TRAINED_KNOBS = {}
#: Test images of the trained default network's golden set (full suite only).
TRAINED_IMAGES = 8
FULL = os.environ.get("BINCOUNT_FULL") == "1"
PARTS = ("stem", "stage1", "stage2", "stage3", "stage4")
#: Largest accepted ratio of measured to ideal cycles per image.
MAX_RATIO = 1.10


def _expected_taps(export, gold, manifest, k):
    """``{part: [beats]}`` of image ``k`` for every tapped part."""
    parts = {p["name"]: p for p in manifest["parts"]}
    out = {"stem": to_beats(gold["stem.output"][k], parts["stem"]["lanes"])}
    for s in range(1, 5):
        last = parts[f"stage{s}"]["layers"][-1]
        out[f"stage{s}"] = to_beats(gold[f"{last}.output"][k], parts[f"stage{s}"]["lanes"])
    return out


@cocotb.test()
async def network_images(dut):
    """Real test images in as bytes, back to back; classes and logits out; taps name the first
    bad part."""
    from bincount.model.export.network_golden import load_network_golden

    case = simlib.load_case()
    export, gold = load_network_golden(case["golden"], check=False)
    manifest = case["manifest"]
    images = gold["pixels"].shape[0]
    beats = [int(v) for v in gold["pixels"].ravel()]
    p = float(case["stall"])
    rng = random.Random(case["seed"])
    classes = int(gold["logits"].shape[1])
    pred_bits = max(1, (classes - 1).bit_length())
    logit_bits = int(export["meta"]["formats"]["logit_bits"])

    await start_stream_engine(dut)
    taps = {name: (getattr(dut, f"tap_{name}_fire"), getattr(dut, f"tap_{name}_payload"))
            for name in PARTS}
    got = {name: [] for name in PARTS}
    results, out_cycles = [], []
    sent, cycle = 0, 0
    limit = 4 * images * manifest["ideal_cycles"] + 200000
    while len(results) < images:
        i_valid = sent < len(beats) and rng.random() >= p
        dut.i__valid.value = int(i_valid)
        if i_valid:
            dut.i__payload.value = beats[sent]
        o_ready = rng.random() >= p
        dut.o__ready.value = int(o_ready)
        await ReadOnly()
        if i_valid and int(dut.i__ready.value):
            sent += 1
        for name, (fire, payload) in taps.items():
            if int(fire.value):
                got[name].append(int(payload.value))
        if o_ready and int(dut.o__valid.value):
            v = int(dut.o__payload.value)
            logits = []
            for j in range(classes):
                x = (v >> (pred_bits + j * logit_bits)) & ((1 << logit_bits) - 1)
                logits.append(x - (1 << logit_bits) if x >> (logit_bits - 1) else x)
            results.append((v & ((1 << pred_bits) - 1), logits))
            out_cycles.append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < limit, (f"stalled: after {cycle} cycles {sent} of {len(beats)} bytes "
                               f"taken, beats per tap {[len(g) for g in got.values()]}, "
                               f"{len(results)} results")

    failures = []
    for k in range(images):
        pred, logits = results[k]
        exp_logits = gold["logits"][k].tolist()
        exp_pred = int(gold["prediction"][k])
        if pred == exp_pred and logits == exp_logits:
            continue
        msg = (f"image {k}: class {pred} (expected {exp_pred}), logits {logits} "
               f"(expected {exp_logits})")
        exp = _expected_taps(export, gold, manifest, k)
        for name in PARTS:
            n = len(exp[name])
            mine = got[name][k * n:(k + 1) * n]
            if mine != exp[name]:
                j = next((j for j, (a, b) in enumerate(zip(mine, exp[name])) if a != b),
                         min(len(mine), n))
                msg += (f"; first part that differs: {name} (beat {j} of {n}: "
                        f"{len(mine)} beats seen)")
                break
        else:
            msg += "; stem and stage outputs all match: the head differs"
        failures.append(msg)
    interval = out_cycles[1] - out_cycles[0] if images > 1 else None
    ideal = manifest["ideal_cycles"]
    result = {"form": case["form"], "stall": p, "images": images, "cycles": cycle,
              "result_cycles": out_cycles, "interval": interval, "ideal_cycles": ideal,
              "part_cycles": {q["name"]: q["cycles_per_image"] for q in manifest["parts"]},
              "ratio": None if interval is None else interval / ideal,
              "predictions": [r[0] for r in results], "failures": failures}
    with open(case["results"], "w") as f:
        json.dump(result, f, indent=2)
    assert not failures, "\n".join(failures)
    assert interval is not None and interval <= MAX_RATIO * ideal, (
        f"{interval} cycles per image, more than {MAX_RATIO} x the slowest part's ideal "
        f"{ideal} ({result['part_cycles']})")


def network_golden_path(form: str) -> Path:
    """Golden set of ``form``: a calibrated small network, (``"trained"``, ``"report-binarized"``)
    the project's default network on :data:`TRAINED_IMAGES` test images, or (``"report-baseline"``) the calibrated
    baseline network that ``bincount report --network`` builds next to it."""
    from bincount.hw.network_report import REPORT_GOLDEN
    from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export

    if form in ("trained", "report-binarized"):
        digest = hashlib.sha256(DEFAULT_EXPORT.read_bytes()).hexdigest()[:12]

        def make(path):
            from bincount.model.export.network_golden import save_network_golden
            save_network_golden(path, "trained", seed=1, test_images=TRAINED_IMAGES,
                                export_path=DEFAULT_EXPORT)
        return simlib._cached_vectors(f"network_trained_{digest}_s1_{TRAINED_IMAGES}img", make)
    if form == "report-baseline":
        width = export_meta(load_export(DEFAULT_EXPORT))["width_mult"]
        args = dict(REPORT_GOLDEN, width_mult=width)
    else:
        args = dict(REPORT_GOLDEN, width_mult=WIDTH)
    form = form.removeprefix("report-")

    def make(path):
        from bincount.model.export.network_golden import save_network_golden
        save_network_golden(path, form, **args)
    return simlib._cached_vectors(f"network_{form}_w{args['width_mult']}_s1", make)


def network_knobs_for(form: str) -> dict:
    """Knobs of case ``form``: the report's fold (the fold planner's, planned for the default
    network) for the ``report-*`` cases, the defaults for ``trained``, else :data:`KNOBS`."""
    from bincount.hw.network_report import network_knobs
    from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export

    if form.startswith("report-"):
        return network_knobs(export_meta(load_export(DEFAULT_EXPORT)))[0]
    return TRAINED_KNOBS if form == "trained" else KNOBS


def emit_network_cached(golden: Path, out_dir: Path, form: str) -> tuple[Path, dict]:
    """Verilog (with taps) and manifest of the network in ``golden`` at the knobs of case
    ``form``, through the build layer's Verilog store (re-emitted only when the export, the
    knobs or the generator sources change)."""
    from bincount.hw.designs import network_design
    from bincount.model.export.network_golden import load_network_golden

    export, _ = load_network_golden(golden, check=False)
    knobs = network_knobs_for(form)
    text, manifest = network_design(export, knobs, taps=True,
                                    cache_dir=simlib.verilog_cache_dir())
    return simlib.write_design(out_dir, text, manifest), manifest


def record_measured_cycles(manifest: dict, results: Path) -> None:
    """Keep the measured interval of a passed run in the build store, where ``bincount report
    --network`` finds it for the same network and knobs (:mod:`bincount.hw.measured_cycles`)."""
    from bincount.hw.measured_cycles import record_network_cycles

    result = json.loads(results.read_text())
    if result["failures"] or result["interval"] is None:
        return
    record_network_cycles(manifest, result)


@pytest.mark.parametrize("form", [
    "binarized",
    pytest.param("baseline", marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: the baseline form's whole network (a second build)")),
    pytest.param("trained", marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: the trained default network (width 0.25)")),
    pytest.param("report-binarized", marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: the report's binarized design (width 0.25)")),
    pytest.param("report-baseline", marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: the report's baseline design (width 0.25)"))])
def test_network(request, form):
    golden = network_golden_path(form)
    with simlib.locked_build_dir(request.node.name) as build_dir:
        times = {}
        t0 = time.perf_counter()
        vpath, manifest = emit_network_cached(golden, build_dir, form)
        times["emit_s"] = time.perf_counter() - t0
        runner = simlib.build([vpath], manifest["module"], build_dir)
        times["build_s"] = time.perf_counter() - t0 - times["emit_s"]
        seed = simlib.default_seed()
        case = {"golden": str(golden), "form": form, "manifest": manifest, "seed": seed,
                "stall": float(os.environ.get("BINCOUNT_STALL", "0.3")),
                "results": str(build_dir / "network_results.json")}
        try:
            simlib.run(runner, __name__, manifest["module"], build_dir, case, seed=seed)
            record_measured_cycles(manifest, Path(case["results"]))
        finally:
            times["sim_s"] = time.perf_counter() - t0 - times["emit_s"] - times["build_s"]
            (build_dir / "timings.json").write_text(
                json.dumps({k: round(v, 2) for k, v in times.items()}) + "\n")
