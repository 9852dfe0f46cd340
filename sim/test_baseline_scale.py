"""cocotb testbench of ``BaselineScale``: ``y = sat((mul * (2*count - N) + offset) >> shift)``.

The block is generated with the shift and widths of the layer the golden vectors come from.
Stimulus, streamed back to back with random ``in_valid`` bubbles:

* the model's golden lane vectors (``bincount.model.export.vectors``): count, the channel's multiplier
  and offset of a calibrated layer, and the model's ``y_baseline``;
* edge cases built here, expected values from the torch-free reference
  ``bincount.model.export.fixed_point.baseline_output``: every golden channel at d = -N, 0 and N;
  the extreme multipliers and offsets (saturation at both ends); accumulator values at the
  saturation boundaries and around the floor of the arithmetic shift (-1, -2**S, ...);
  a zero multiplier; a negative multiplier (negative BN scale).
"""

from __future__ import annotations

import random

import cocotb
import pytest

from bincount.model.export.fixed_point import baseline_output, int_range
from bincount.model.export.vectors import load_lane_vectors

from . import simlib
from .lanetb import StreamTB, numbered


class Edges:
    """Builds edge-case items for one block configuration."""

    def __init__(self, n, shift, out_bits, mul_bits, off_bits):
        self.n, self.shift, self.out_bits = n, shift, out_bits
        self.mul_range = int_range(mul_bits)
        self.off_range = int_range(off_bits)
        self.items = []

    def add(self, label, count, mul, offset, channel=None):
        lo, hi = self.off_range
        if not (lo <= offset <= hi and self.mul_range[0] <= mul <= self.mul_range[1]
                and 0 <= count <= self.n):
            return  # not representable at these widths
        d = 2 * count - self.n
        y = int(baseline_output(count, self.n, mul, offset, self.shift, self.out_bits))
        self.items.append({
            "label": label, "channel": channel,
            "note": f"count {count} (d {d}), mul {mul}, offset {offset}, acc {mul * d + offset}",
            "inputs": {"count": count, "mul": mul, "offset": offset},
            "expected": {"y": y}})

    def add_acc(self, label, acc, count, mul):
        """An item whose accumulator ``mul * d + offset`` equals ``acc``."""
        self.add(label, count, mul, acc - mul * (2 * count - self.n))


def golden_items(data: dict) -> list[dict]:
    out = []
    for i in range(len(data["channel"])):
        count, mul, off = int(data["count"][i]), int(data["mul"][i]), int(data["offset"][i])
        out.append({"label": f"golden {i}", "channel": int(data["channel"][i]),
                    "note": f"count {count}, mul {mul}, offset {off}",
                    "inputs": {"count": count, "mul": mul, "offset": off},
                    "expected": {"y": int(data["y_baseline"][i])}})
    return out


def edge_items(data: dict, params: dict) -> list[dict]:
    n, s = params["n"], params["shift"]
    e = Edges(n, s, params["out_bits"], params["mul_bits"], params["off_bits"])
    channels = {}
    for i in range(len(data["channel"])):
        channels.setdefault(int(data["channel"][i]), (int(data["mul"][i]), int(data["offset"][i])))
    for c, (mul, off) in sorted(channels.items()):
        for count, where in ((0, "d = -N"), (n, "d = N"), (n // 2, "d = 0 or 1")):
            e.add(where, count, mul, off, c)
        e.add("negative multiplier (negated golden channel)", n, -mul, off, c)
    m_lo, m_hi = e.mul_range
    o_lo, o_hi = e.off_range
    y_lo, y_hi = int_range(params["out_bits"])
    for count in (0, n):
        e.add("largest multiplier", count, m_hi, 0)
        e.add("smallest multiplier", count, m_lo, 0)
        e.add("largest multiplier and offset", count, m_hi, o_hi)
        e.add("smallest multiplier and offset", count, m_lo, o_lo)
    e.add("zero multiplier, largest offset", n // 2, 0, o_hi)
    e.add("zero multiplier, smallest offset", n // 2, 0, o_lo)
    e.add("zero multiplier, zero offset", n // 3, 0, 0)
    mul = next(iter(channels.values()))[0] if channels else 1000
    count = (3 * n) // 4
    for acc, label in (
            ((y_hi << s), "acc = y_max << S (largest unsaturated)"),
            (((y_hi + 1) << s) - 1, "acc = ((y_max + 1) << S) - 1"),
            (((y_hi + 1) << s), "acc = (y_max + 1) << S (saturates)"),
            ((y_lo << s), "acc = y_min << S (smallest unsaturated)"),
            ((y_lo << s) - 1, "acc = (y_min << S) - 1 (saturates)"),
            (-1, "acc = -1 (floor gives -1)"),
            (-(1 << s), "acc = -2**S"),
            (-(1 << s) - 1, "acc = -2**S - 1 (floor gives -2)"),
            ((1 << s) - 1, "acc = 2**S - 1 (floor gives 0)"),
            ((1 << s), "acc = 2**S"),
            (0, "acc = 0")):
        e.add_acc(label, acc, count, mul)
        e.add_acc(label + ", negative multiplier", acc, count, -mul)
    return e.items


@cocotb.test()
async def baseline_scale_stream(dut):
    """Golden vectors and edge cases, back to back with random bubbles, checked in order."""
    case = simlib.load_case()
    params = case["params"]
    data = load_lane_vectors(case["vectors"])
    meta = data["meta"]
    for key in ("n", "shift", "out_bits", "mul_bits", "off_bits"):
        assert meta[key] == params[key], f"vector file has {key} = {meta[key]}, block {params[key]}"
    rng = random.Random(case["seed"])
    items = edge_items(data, params) + golden_items(data)
    rng.shuffle(items)
    tb = StreamTB(dut, case["manifest"], seed=case["seed"])
    await tb.start()
    await tb.run(numbered(items))


@pytest.mark.parametrize("n", simlib.WIDTHS)
def test_baseline_scale(request, golden_vectors, n):
    path = golden_vectors(n)
    meta = simlib.vector_meta(path)
    params = {key: meta[key] for key in ("n", "shift", "out_bits", "mul_bits", "off_bits")}
    simlib.run_block(request.node.name, __name__, "baseline_scale", params,
                     {"vectors": str(path)})
