"""RPReLULanes in the Amaranth simulator against the integer reference: the block's ``sum``
in, its ``output`` out, constants from the ROM ``constants_lead`` cycles ahead; both forms."""

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.gateware.block_params import block_params
from bincount.gateware.rprelu_lanes import RPReLULanes
from engine_cases import reference_tensors, run_cycles, tiny_export, unpack
from test_conv_output import drive_groups


@pytest.mark.parametrize("rprelu", ["pow2", "trained"])
def test_outputs_match_reference(rprelu):
    ex = tiny_export(8, 16, 2, 4, "binarized", True, rprelu, 1, seed=11)
    x = np.random.default_rng(12).integers(-3000, 3000, (8, 4, 4))
    p = block_params(ex, "stage1.conv1", 4, 8)
    ref = reference_tensors(ex, x)
    dut = RPReLULanes(p)
    assert dut.latency == 4 and dut.constants_lead == 3
    picks = [(g, y, xx) for g in (3, 0, 2, 1) for y in range(2) for xx in range(2)]
    sums = [ref["sum"][g * 4:(g + 1) * 4, y, xx].tolist() for g, y, xx in picks]
    inputs = drive_groups("s", [g for g, _, _ in picks], sums, dut.constants_lead, 16)
    got = run_cycles(dut, inputs, ["y", "out_valid"], extra=dut.latency)
    for k, (g, y, xx) in enumerate(picks):
        out = got[k + dut.constants_lead + dut.latency - 1]
        assert out["out_valid"]
        assert unpack(out["y"], 16, 4) == ref["output"][g * 4:(g + 1) * 4, y, xx].tolist(), k
    assert sum(o["out_valid"] for o in got) == len(picks)


def test_layer_without_rprelu_is_refused():
    ex = tiny_export(8, 8, 1, 4, "binarized", False, None, 1)
    with pytest.raises(BincountError, match="no RPReLU"):
        RPReLULanes(block_params(ex, "stage1.conv1", 4, 8))
