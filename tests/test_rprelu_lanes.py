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
    dut = RPReLULanes(p)
    assert dut.latency == 4 and dut.constants_lead == 3
    _check_against_reference(dut, ex, x, (3, 0, 2, 1))


def _check_against_reference(dut, ex, x, groups):
    """Drive the reference's block sums of ``groups`` (every output pixel of the 2x2 map) into
    ``dut`` and compare each beat with the reference's block output."""
    ref = reference_tensors(ex, x)
    picks = [(g, y, xx) for g in groups for y in range(2) for xx in range(2)]
    sums = [ref["sum"][g * 4:(g + 1) * 4, y, xx].tolist() for g, y, xx in picks]
    inputs = drive_groups("s", [g for g, _, _ in picks], sums, dut.constants_lead, 16)
    got = run_cycles(dut, inputs, ["y", "out_valid"], extra=dut.latency)
    for k, (g, y, xx) in enumerate(picks):
        out = got[k + dut.constants_lead + dut.latency - 1]
        assert out["out_valid"]
        assert unpack(out["y"], 16, 4) == ref["output"][g * 4:(g + 1) * 4, y, xx].tolist(), k
    assert sum(o["out_valid"] for o in got) == len(picks)


@pytest.mark.parametrize("neg", [0, 1])
def test_shifter_built_for_the_layers_exponents(neg):
    """The lanes' shifter covers the layer's own exponent range and slope signs, and the
    outputs still equal the reference."""
    ex = tiny_export(8, 16, 2, 4, "binarized", True, "pow2", 1, seed=5)
    exp = np.array([-3, -1, -2, -1, -3, -2, -2, -1] * 2)
    ex["stage1.conv1.rprelu.slope_exp"] = exp
    ex["stage1.conv1.rprelu.slope_neg"] = np.full(16, neg) if neg == 0 else exp % 2
    p = block_params(ex, "stage1.conv1", 4, 8)
    assert p.rprelu_exponents == (-3, -1) and p.rprelu_negative_slopes == bool(neg)
    dut = RPReLULanes(p)
    assert dut._unit.exponents == (-3, -1) and dut._unit.negative_slopes == bool(neg)
    x = np.random.default_rng(6).integers(-3000, 3000, (8, 4, 4))
    _check_against_reference(dut, ex, x, (1, 3, 0, 2))


def test_pow2_exponents_outside_the_shifters_range_use_the_full_shifter():
    ex = tiny_export(8, 16, 2, 4, "binarized", True, "pow2", 1, seed=5)
    ex["stage1.conv1.rprelu.slope_exp"] = np.array([-16] + [-1] * 15)
    assert block_params(ex, "stage1.conv1", 4, 8).rprelu_exponents is None
    ex = tiny_export(8, 16, 2, 4, "binarized", True, "trained", 1, seed=5)
    p = block_params(ex, "stage1.conv1", 4, 8)
    assert p.rprelu_exponents is None and p.rprelu_negative_slopes


def test_layer_without_rprelu_is_refused():
    ex = tiny_export(8, 8, 1, 4, "binarized", False, None, 1)
    with pytest.raises(BincountError, match="no RPReLU"):
        RPReLULanes(block_params(ex, "stage1.conv1", 4, 8))
