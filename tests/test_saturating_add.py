"""SaturatingAdd in the Amaranth simulator against the integer reference (``sum`` of a block:
conv output + shortcut, saturated)."""

import numpy as np

from bincount.gateware.saturating_add import SaturatingAdd
from engine_cases import pack, reference_tensors, run_cycles, tiny_export, unpack


def test_sum_of_conv_and_shortcut_matches_reference():
    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1, seed=2)
    x = np.random.default_rng(3).integers(-700, 700, (8, 4, 4))
    x[:, 0, 0], x[:, 1, 1] = 32767, -32768                 # both saturations
    ref = reference_tensors(ex, x)
    conv, sc, want = (ref[k].reshape(8, -1).T.reshape(-1, 4) for k in ("conv_out", "shortcut",
                                                                        "sum"))
    dut = SaturatingAdd(4, 16)
    assert dut.latency == 1
    inputs = [{"a": pack(a, 16), "b": pack(b, 16), "in_valid": 1} for a, b in zip(conv, sc)]
    inputs[3] = dict(inputs[3], in_valid=0)
    got = run_cycles(dut, inputs + [{"in_valid": 0}], ["y", "out_valid"])
    for t, w in enumerate(want):
        out = got[t + dut.latency - 1]
        assert out["out_valid"] == (t != 3)
        assert unpack(out["y"], 16, 4) == w.tolist(), t
    assert (np.abs(want) == 32768).any() or (want == 32767).any()
