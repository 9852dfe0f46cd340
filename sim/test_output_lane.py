"""cocotb testbench of ``OutputLane``: XNOR-popcount followed by the post-popcount block.

One output element from its bits: ``y = hi if popcount(~(act ^ wgt)) >= threshold else lo``
(form ``binarized``) or ``y = sat((mul * (2*count - N) + offset) >> shift)`` (form
``baseline``, generated with the shift and widths of the layer the vectors come from). This
checks the wiring between the two blocks: the per-channel constants enter with ``act`` /
``wgt`` and must meet their own count ``latency`` cycles later.

Stimulus, streamed back to back with random ``in_valid`` bubbles: the model's golden lane
vectors (input and weight bits of a calibrated layer, the model's ``y_binarized`` /
``y_baseline``) and edge cases whose expected values the torch-free reference
(``bincount.model.export.fixed_point``) computes here: all-agreeing and all-disagreeing bits
(count N and 0) against T = 0, T = N, T = N + 1 and swapped hi / lo; the extreme multipliers
for saturation.
"""

from __future__ import annotations

import random

import cocotb
import pytest

from bincount.model.export.fixed_point import baseline_output, binarized_output, int_range
from bincount.model.export.vectors import load_lane_vectors

from . import simlib
from .lanetb import StreamTB, mask, numbered, packed_to_int

CONSTANTS = {"binarized": ("threshold", "hi", "lo"), "baseline": ("mul", "offset")}


def expected_y(form: str, count: int, consts: dict, meta: dict) -> int:
    if form == "binarized":
        return int(binarized_output(count, consts["threshold"], consts["hi"], consts["lo"]))
    return int(baseline_output(count, meta["n"], consts["mul"], consts["offset"],
                               meta["shift"], meta["out_bits"]))


def golden_items(data: dict, form: str, n: int) -> list[dict]:
    key = "y_binarized" if form == "binarized" else "y_baseline"
    out = []
    for i in range(len(data["channel"])):
        inputs = {"act": packed_to_int(data["act_bits"][i], n),
                  "wgt": packed_to_int(data["wgt_bits"][i], n)}
        inputs.update({c: int(data[c][i]) for c in CONSTANTS[form]})
        out.append({"label": f"golden {i}", "channel": int(data["channel"][i]),
                    "note": f"count {int(data['count'][i])}", "inputs": inputs,
                    "expected": {"y": int(data[key][i])}})
    return out


def edge_items(data: dict, form: str, meta: dict, rng: random.Random) -> list[dict]:
    n = meta["n"]
    full = mask(n)
    consts = {c: int(data[c][0]) for c in CONSTANTS[form]}
    channel = int(data["channel"][0])
    if form == "binarized":
        hi, lo = consts["hi"], consts["lo"]
        variants = [(f"T = {t}", {"threshold": t, "hi": hi, "lo": lo}) for t in (0, n, n + 1)]
        variants.append(("hi < lo", {"threshold": n, "hi": min(hi, lo), "lo": max(hi, lo)}))
    else:
        m_lo, m_hi = int_range(meta["mul_bits"])
        variants = [("golden constants", consts),
                    ("largest multiplier", {"mul": m_hi, "offset": 0}),
                    ("smallest multiplier", {"mul": m_lo, "offset": 0})]
    items = []
    for label, c in variants:
        for agree_label, count in (("all bits agree", n), ("no bit agrees", 0)):
            wgt = rng.getrandbits(n)
            act = wgt if count == n else full ^ wgt
            items.append({"label": f"{agree_label}, {label}", "channel": channel,
                          "note": f"count {count}", "inputs": {"act": act, "wgt": wgt, **c},
                          "expected": {"y": expected_y(form, count, c, meta)}})
    return items


@cocotb.test()
async def output_lane_stream(dut):
    """Golden vectors and edge cases, back to back with random bubbles, checked in order."""
    case = simlib.load_case()
    form, n = case["params"]["form"], case["params"]["n"]
    data = load_lane_vectors(case["vectors"])
    meta = data["meta"]
    assert meta["n"] == n, f"vector file is for N = {meta['n']}, block N = {n}"
    rng = random.Random(case["seed"])
    items = edge_items(data, form, meta, rng) + golden_items(data, form, n)
    rng.shuffle(items)
    tb = StreamTB(dut, case["manifest"], seed=case["seed"])
    await tb.start()
    await tb.run(numbered(items))


def lane_params(form: str, meta: dict) -> dict:
    keys = ("n", "out_bits") if form == "binarized" else (
        "n", "out_bits", "shift", "mul_bits", "off_bits")
    return {"form": form, **{k: meta[k] for k in keys}}


@pytest.mark.parametrize("n", simlib.WIDTHS)
@pytest.mark.parametrize("form", ["binarized", "baseline"])
def test_output_lane(request, golden_vectors, form, n):
    path = golden_vectors(n)
    simlib.run_block(request.node.name, __name__, "output_lane",
                     lane_params(form, simlib.vector_meta(path)), {"vectors": str(path)})
