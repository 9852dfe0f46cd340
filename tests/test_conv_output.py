"""ConvOutput in the Amaranth simulator against the integer reference: the reference's counts
of every group in, its conv outputs out, constants from the ROM addressed ``constants_lead``
cycles ahead; both forms."""

import numpy as np
import pytest

from bincount.gateware.block_params import block_params
from bincount.gateware.conv_output import ConvOutput
from engine_cases import pack, reference_tensors, run_cycles, tiny_export, unpack


def drive_groups(port, groups, values, lead, bits):
    """Inputs of one group per cycle: ``values[k]`` (lane values) on ``port`` for group
    ``groups[k]``, whose address comes ``lead`` cycles ahead."""
    n = len(groups)
    inputs = [{"in_valid": 0} for _ in range(n + lead + 1)]
    for k, (g, v) in enumerate(zip(groups, values)):
        inputs[k]["group"] = g
        inputs[k + lead].update({"in_valid": 1, port: pack(v, bits)})
    return inputs


@pytest.mark.parametrize("form", ["binarized", "baseline"])
def test_conv_outputs_match_reference(form):
    ex = tiny_export(8, 16, 2, 4, form, True, "pow2", 1, seed=7)
    x = np.random.default_rng(8).integers(-700, 700, (8, 4, 4))
    p = block_params(ex, "stage1.conv1", 4, 8)
    ref = reference_tensors(ex, x)
    dut = ConvOutput(p)
    assert dut.latency == (1 if form == "binarized" else 3) and dut.constants_lead == 3
    rng = np.random.default_rng(9)
    picks = [(int(rng.integers(4)), int(rng.integers(2)), int(rng.integers(2)))
             for _ in range(30)]
    groups = [g for g, _, _ in picks]
    counts = [ref["count"][g * 4:(g + 1) * 4, y, xx].tolist() for g, y, xx in picks]
    nb = len(dut.counts[0])
    inputs = drive_groups("counts", groups, counts, dut.constants_lead, nb)
    got = run_cycles(dut, inputs, ["y", "out_valid"], extra=dut.latency)
    for k, (g, y, xx) in enumerate(picks):
        out = got[k + dut.constants_lead + dut.latency - 1]
        assert out["out_valid"]
        assert unpack(out["y"], 16, 4) == ref["conv_out"][g * 4:(g + 1) * 4, y, xx].tolist()
    assert sum(o["out_valid"] for o in got) == len(picks)
