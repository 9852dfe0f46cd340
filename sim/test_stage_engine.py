"""cocotb testbench of the stage engines: every binary layer of ReActNet-18, bit for bit.

For each stage (1..4) and form (binarized counting, multiply baseline) the engine is generated
from the export inside an engine-golden file (:mod:`bincount.model.export.engine_golden`: a full-width
ReActNet-18 whose BatchNorms are calibrated on real CIFAR-10 test images, run by the integer
reference on another test image). The testbench streams the stage's input residual stream of
that image into ``i`` with random gaps, holds ``o.ready`` low at random, and compares every
output element of every layer: the first three through the observation taps between the blocks,
the last on ``o``. It also records the cycles from the first input beat to the last output beat
(``engine_results.json`` in the build folder).

``BINCOUNT_STALL`` (default 0.3) sets the probability of an input gap and of an output stall per
cycle; 0 measures the engine's own cycles (used by ``bench/engine_cycles.py``).

With ``BINCOUNT_FULL=1`` every stage in both forms also runs at the fold ``bincount report
--engines`` builds (``REPORT_KNOBS``: B = 128 at stage 4, one post-popcount unit per block), with
the same gaps and stalls.

The streamed-weight form (``weights="stream"``, the form for a stage whose weights do not fit
on chip) of stage 4 is run the same way, the testbench feeding every block's weight stream
``w{j}`` with the block's weight words, once per output pixel, with random gaps.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from bincount.gateware.block_params import block_params, from_beats, to_beats
from bincount.model.export.engine_golden import load_engine_golden

from . import simlib
from .engine_sim import run_stage, start_stream_engine

FORMS = ("binarized", "baseline")
FULL = os.environ.get("BINCOUNT_FULL") == "1"


def stall_probability() -> float:
    return float(os.environ.get("BINCOUNT_STALL", "0.3"))


def _int(handle) -> int:
    return int(handle.value)


@cocotb.test()
async def stage_engine_layers(dut):
    """The stage input of one test image in, every layer's output compared."""
    case = simlib.load_case()
    export, gold = load_engine_golden(case["golden"], check=False)
    blocks = case["manifest"]["blocks"]
    lanes = case["manifest"]["parameters"]["lanes"]
    names = [b["name"] for b in blocks]
    repeats = int(case.get("repeats", 1))
    beats = to_beats(gold[f"{names[0]}.input"][0], lanes) * repeats
    per = [b["out_size"] ** 2 * b["cout"] // lanes for b in blocks]
    p = float(case.get("stall", 0.3))
    rng = random.Random(case["seed"])

    await start_stream_engine(dut)

    taps = [(getattr(dut, f"tap{j}_fire"), getattr(dut, f"tap{j}_payload"))
            for j in range(len(blocks) - 1)]
    # streamed weights: block j's words in order, once per output pixel (repeated cyclically)
    params = case["manifest"]["parameters"]
    w_streams = []
    if params.get("weights") == "stream":
        for j, name in enumerate(names):
            words = block_params(export, name, lanes, params["bits_per_cycle"]).weight_words()
            w_streams.append({"valid": getattr(dut, f"w{j}__valid"),
                              "payload": getattr(dut, f"w{j}__payload"),
                              "ready": getattr(dut, f"w{j}__ready"), "words": words, "k": 0,
                              "send": False})
            w_streams[-1]["valid"].value = 0
    got = [[] for _ in blocks]
    # cycle of every beat on the input and on each layer's output: [stream][beat]
    times = [[] for _ in range(len(blocks) + 1)]
    sent, cycle, limit = 0, 0, 40 * repeats * sum(b["ideal_cycles"] for b in blocks)
    while len(got[-1]) < per[-1] * repeats:
        i_valid = sent < len(beats) and rng.random() >= p
        dut.i__valid.value = int(i_valid)
        if i_valid:
            dut.i__payload.value = beats[sent]
        o_ready = rng.random() >= p
        dut.o__ready.value = int(o_ready)
        for w in w_streams:
            w["send"] = rng.random() >= p
            w["valid"].value = int(w["send"])
            if w["send"]:
                w["payload"].value = w["words"][w["k"] % len(w["words"])]
        await ReadOnly()
        for w in w_streams:
            if w["send"] and _int(w["ready"]):
                w["k"] += 1
        if i_valid and _int(dut.i__ready):
            sent += 1
            times[0].append(cycle)
        for j, (fire, payload) in enumerate(taps):
            if _int(fire):
                got[j].append(_int(payload))
                times[j + 1].append(cycle)
        if o_ready and _int(dut.o__valid):
            got[-1].append(_int(dut.o__payload))
            times[-1].append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < limit, (f"stalled: after {cycle} cycles {sent} of {len(beats)} input "
                               f"beats taken, output beats per layer {[len(g) for g in got]}, "
                               f"expected {[n * repeats for n in per]}")

    failures = []
    for j, (b, beats_out) in enumerate(zip(blocks, got)):
        name = b["name"]
        exp = gold[f"{name}.output"][0]
        if len(beats_out) != per[j] * repeats:
            failures.append(f"{name}: {len(beats_out)} output beats, expected "
                            f"{per[j] * repeats}")
            continue
        for r in range(repeats):
            out = from_beats(beats_out[r * per[j]:(r + 1) * per[j]], b["cout"], b["out_size"],
                             lanes)
            bad = np.argwhere(out != exp)
            if len(bad):
                c, y, x = bad[0].tolist()
                failures.append(f"{name} (image {r}): {len(bad)} of {out.size} outputs differ; "
                                f"first [c={c}, y={y}, x={x}]: expected {exp[c, y, x]}, "
                                f"got {out[c, y, x]}")
    n_in = len(beats) // repeats
    layer_cycles = [times[j + 1][per[j] - 1] - times[j][0] + 1 for j in range(len(blocks))]
    result = {"stage": case["stage"], "stall": p, "repeats": repeats, "layers": names,
              "lanes": lanes, "bits_per_cycle": case["manifest"]["parameters"]["bits_per_cycle"],
              "ideal_cycles": [b["ideal_cycles"] for b in blocks],
              "layer_cycles": layer_cycles,
              "image_latency": times[-1][per[-1] - 1] - times[0][0] + 1,
              "interval": (times[-1][2 * per[-1] - 1] - times[-1][per[-1] - 1]
                           if repeats > 1 else None),
              "input_beats": n_in, "failures": failures,
              "elements": int(sum(np.asarray(gold[f"{n}.output"][0]).size for n in names))}
    if w_streams:
        taken = [w["k"] for w in w_streams]
        expect = [b["out_size"] ** 2 * len(w["words"]) * repeats
                  for b, w in zip(blocks, w_streams)]
        result["weight_words"] = taken
        # one word per fold; the weight queue may hold up to four more
        if any(not 0 <= t - e <= 4 for t, e in zip(taken, expect)):
            failures.append(f"weight words taken per block {taken}, expected {expect} (one "
                            f"per fold) plus at most 4 waiting in the weight queue")
    with open(case["results"], "w") as f:
        json.dump(result, f, indent=2)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
@pytest.mark.parametrize("form", FORMS)
def test_stage_engine(request, form, stage):
    golden = simlib.engine_golden(form)
    run_stage(request.node.name, __name__, golden, stage, {"stall": stall_probability()})


@pytest.mark.parametrize("form, layer", [("binarized", "stage1.conv1"),
                                         ("baseline", "stage2.conv1")])
def test_stage_engine_shared_post_popcount(request, form, layer):
    """One post-popcount unit shared by the 8 lanes of a block (8 slices a group in its F = 9
    folds, the tightest case; the stride-2 entry of stage 2 with its concat shortcut), with
    gaps and stalls; one block each, to keep the suite short."""
    golden = simlib.engine_golden(form)
    run_stage(request.node.name, __name__, golden, int(layer[5]), {"stall": stall_probability()},
              layers=[layer], post_lanes=1)


@pytest.mark.skipif(not FULL, reason="BINCOUNT_FULL=1: every stage at the report's fold")
@pytest.mark.parametrize("stage", [1, 2, 3, 4])
@pytest.mark.parametrize("form", FORMS)
def test_stage_engine_at_the_report_fold(request, form, stage):
    """The whole stage at the report's fold (its B for the stage, shared post-popcount
    units), with gaps and stalls."""
    from bincount.hw.knobs import report_knobs

    knobs = report_knobs({})
    golden = simlib.engine_golden(form)
    run_stage(request.node.name, __name__, golden, stage, {"stall": stall_probability()},
              lanes=knobs.lanes, bits_per_cycle=knobs.stage_bits(stage),
              post_lanes=knobs.post_lanes)


def test_stage_engine_streamed_weights(request):
    """Stage 4 (whose weights exceed an LFE5U-85F's block RAM) with its weights streamed."""
    golden = simlib.engine_golden("binarized")
    run_stage(request.node.name, __name__, golden, 4, {"stall": stall_probability()},
              weights="stream")
