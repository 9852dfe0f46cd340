"""cocotb testbench of ``ThresholdCompare``: ``y = hi if count >= threshold else lo``.

Stimulus, streamed back to back with random ``in_valid`` bubbles:

* the model's golden lane vectors (``bincount.model.export.vectors``): count, the channel's threshold
  and hi / lo constants of a calibrated layer, and the model's ``y_binarized``; about half of
  them sit within one of the threshold;
* edge cases built here, expected values from the torch-free reference
  ``bincount.model.export.fixed_point.binarized_output``: for every channel of the golden set the
  count exactly at T, at T - 1 and T + 1; T = 0 (always hi) and T = N + 1 (never hi) at
  count 0 and N; T = N and T = 1 at their boundaries; a negative BN scale (hi < lo, the
  golden channels' constants swapped); the extreme output values; hi = lo.
"""

from __future__ import annotations

import random

import cocotb
import pytest

from bincount.model.export.fixed_point import binarized_output, int_range
from bincount.model.export.vectors import load_lane_vectors

from . import simlib
from .lanetb import StreamTB, numbered


def item(label, count, threshold, hi, lo, channel=None):
    y = int(binarized_output(count, threshold, hi, lo))
    return {"label": label, "channel": channel,
            "note": f"count {count}, T {threshold}, hi {hi}, lo {lo}",
            "inputs": {"count": count, "threshold": threshold, "hi": hi, "lo": lo},
            "expected": {"y": y}}


def golden_items(data: dict) -> list[dict]:
    out = []
    for i in range(len(data["channel"])):
        it = item(f"golden {i}", int(data["count"][i]), int(data["threshold"][i]),
                  int(data["hi"][i]), int(data["lo"][i]), int(data["channel"][i]))
        it["expected"] = {"y": int(data["y_binarized"][i])}  # the model's value, not ours
        out.append(it)
    return out


def edge_items(data: dict, n: int, out_bits: int) -> list[dict]:
    channels = {}
    for i in range(len(data["channel"])):
        channels.setdefault(int(data["channel"][i]),
                            (int(data["threshold"][i]), int(data["hi"][i]), int(data["lo"][i])))
    items = []
    for c, (t, hi, lo) in sorted(channels.items()):
        for count, where in ((t, "count = T"), (t - 1, "count = T - 1"), (t + 1, "count = T + 1")):
            if 0 <= count <= n:
                items.append(item(where, count, t, hi, lo, c))
        # the same channel with a negative BN scale: hi and lo swap roles
        for count in (t, t - 1):
            if 0 <= count <= n:
                items.append(item("negative scale (hi < lo)", count, t, min(hi, lo),
                                  max(hi, lo), c))
    c0, (_, hi, lo) = sorted(channels.items())[0]
    y_min, y_max = int_range(out_bits)
    for count in (0, 1, n // 2, n - 1, n):
        items.append(item("T = 0 (always hi)", count, 0, hi, lo))
        items.append(item(f"T = N + 1 = {n + 1} (never hi)", count, n + 1, hi, lo))
    for count in (n - 1, n):
        items.append(item(f"T = N = {n}", count, n, hi, lo))
    for count in (0, 1):
        items.append(item("T = 1", count, 1, hi, lo))
    for count in (n // 2 - 1, n // 2):
        items.append(item("extreme outputs", count, n // 2, y_max, y_min))
        items.append(item("extreme outputs, hi < lo", count, n // 2, y_min, y_max))
        items.append(item("hi = lo", count, n // 2, -1, -1))
    return items


@cocotb.test()
async def threshold_compare_stream(dut):
    """Golden vectors and edge cases, back to back with random bubbles, checked in order."""
    case = simlib.load_case()
    n, out_bits = case["params"]["n"], case["params"]["out_bits"]
    data = load_lane_vectors(case["vectors"])
    assert data["meta"]["n"] == n, f"vector file is for N = {data['meta']['n']}, block N = {n}"
    rng = random.Random(case["seed"])
    items = edge_items(data, n, out_bits) + golden_items(data)
    rng.shuffle(items)
    tb = StreamTB(dut, case["manifest"], seed=case["seed"])
    await tb.start()
    await tb.run(numbered(items))


@pytest.mark.parametrize("n", simlib.WIDTHS)
def test_threshold_compare(request, golden_vectors, n):
    path = golden_vectors(n)
    meta = simlib.vector_meta(path)
    simlib.run_block(request.node.name, __name__, "threshold_compare",
                     {"n": n, "out_bits": meta["out_bits"]}, {"vectors": str(path)})
