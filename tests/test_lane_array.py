"""LaneArray in the Amaranth simulator against the integer reference: the window bits and
weight words of every fold of a small block give the reference's XNOR-popcounts."""

import numpy as np
import pytest

from bincount.gateware.block_params import block_params
from bincount.gateware.lane_array import LaneArray
from bincount.gateware.xnor_popcount import popcount_latency
from engine_cases import reference_tensors, run_cycles, tiny_export, to_int, unpack, window_bits


@pytest.mark.parametrize("lanes, bpc", [(4, 8), (2, 16), (8, 4)])
def test_counts_match_reference(lanes, bpc):
    ex = tiny_export(16, 16, 1, 3, "binarized", True, "pow2", 1, seed=lanes)
    x = np.random.default_rng(bpc).integers(-700, 700, (16, 3, 3))
    p = block_params(ex, "stage1.conv1", lanes, bpc)
    ref = reference_tensors(ex, x)
    words, F, B = p.weight_words(), p.folds, bpc
    dut = LaneArray(lanes, bpc, F)
    assert dut.latency == popcount_latency(bpc) + 1
    inputs, want, ends = [], [], []
    for oy in range(3):
        for ox in range(3):
            win = window_bits(ref["act_bits"], 1, 1, oy, ox)
            for g in range(p.out_groups):
                for f in range(F):
                    inputs.append({"act": to_int(win[f * B:(f + 1) * B]),
                                   "wgt": words[g * F + f], "in_valid": 1,
                                   "first": f == 0, "last": f == F - 1})
                    if f == 2:                              # a bubble inside the group
                        inputs.append({"in_valid": 0})
                ends.append(len(inputs) - 1)
                want.append(ref["count"][g * lanes:(g + 1) * lanes, oy, ox].tolist())
    got = run_cycles(dut, inputs + [{"in_valid": 0}], ["counts", "out_valid"],
                     extra=dut.latency)
    nb = len(dut.counts[0])
    valid = [t for t, o in enumerate(got) if o["out_valid"]]
    assert valid == [e + dut.latency - 1 for e in ends]
    for t, w in zip(valid, want):
        assert unpack(got[t]["counts"], nb, lanes, signed=False) == w, t
