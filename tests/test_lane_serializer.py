"""LaneSerializer and LaneGatherer in the Amaranth simulator: the slices of a group in order,
at the stated latency, from a capture of the counts (which change the next cycle); and the
beat put back together."""

import pytest

from bincount.errors import BincountError
from bincount.gateware.lane_gatherer import LaneGatherer
from bincount.gateware.lane_serializer import LaneSerializer
from engine_cases import run_cycles


def _pack(values, width):
    return sum(v << (i * width) for i, v in enumerate(values))


@pytest.mark.parametrize("spacing", [3, 5])
def test_serializer_hands_out_the_slices_in_order(spacing):
    P, Q, W, groups = 6, 2, 5, 4
    dut = LaneSerializer(P, Q, W, groups)
    assert dut.slices == 3 and dut.latency == 2
    sends = [(g, [(7 * g + 3 * p + 1) % 32 for p in range(P)]) for g in (2, 0, 3, 1)]
    inputs = [{"in_valid": 0} for _ in range(spacing * len(sends) + 2)]
    starts = []
    for k, (g, vals) in enumerate(sends):
        t = 1 + k * spacing
        starts.append(t)
        inputs[t] = {"in_valid": 1, "group": g, "data": _pack(vals, W)}
        inputs[t + 1] = {"in_valid": 0, "data": (1 << (P * W)) - 1}   # the counts move on
    got = run_cycles(dut, inputs, ["out", "index", "slice", "last", "out_valid"], extra=6)
    for t, (g, vals) in zip(starts, sends):
        for s in range(3):
            o = got[t + dut.latency - 1 + s]
            assert o["out_valid"] and o["slice"] == s and o["last"] == (s == 2)
            assert o["index"] == g * 3 + s and o["out"] == _pack(vals[s * Q:(s + 1) * Q], W)
    assert sum(o["out_valid"] for o in got) == 3 * len(sends)


def test_gatherer_rebuilds_the_beat():
    dut = LaneGatherer(8, 2, 4)
    assert dut.slices == 4 and dut.latency == 0
    slices = [[1, 2], [3, 4], [5, 6], [7, 8]]
    inputs = [{"in_valid": 1, "slice": s, "data": _pack(v, 4)} for s, v in enumerate(slices)]
    inputs.insert(2, {"in_valid": 0, "slice": 3, "data": 0})          # a gap between slices
    inputs.append({"in_valid": 0})
    got = run_cycles(dut, inputs, ["out", "out_valid"])
    # out_valid is combinational with the last slice: sampled in the cycle after its edge
    assert [o["out_valid"] for o in got] == [0, 0, 0, 0, 1, 0]
    assert got[4]["out"] == _pack(sum(slices, []), 4)


@pytest.mark.parametrize("cls, args, match", [
    (LaneSerializer, (6, 4, 5, 2), r"slice_lanes must divide lanes = 6, got 4"),
    (LaneSerializer, (4, 4, 5, 2), r"slice_lanes must be in 1\.\.3, got 4"),
    (LaneGatherer, (6, 4, 5), r"slice_lanes must divide lanes = 6, got 4"),
    (LaneGatherer, (1, 1, 5), r"lanes must be in 2\.\.1024, got 1"),
])
def test_bad_parameters(cls, args, match):
    with pytest.raises(BincountError, match=match):
        cls(*args)
