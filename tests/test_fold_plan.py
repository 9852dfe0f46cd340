"""The fold planner: legal, balanced plans for ReActNet-18 on the four devices, the model's
block-RAM rule against the measured engines, and the one-line failures."""

import re
import pytest

from bincount.errors import BincountError
from bincount.hw.fold_plan import (CYCLE_MARGIN, DEVICES, MAX_IDLE, MODEL, _blocks, format_plan,
                                   plan_network, block_resources)
from bincount.model.export.net_format import DEFAULT_FORMAT


def geometry_meta(width=1, form="binarized", rprelu="pow2"):
    """Export metadata of a ReActNet-18 (concat shortcuts) at ``width`` (geometry only)."""
    layers, prev = [], 64 * width
    for s, (ch, size) in enumerate(((64, 32), (128, 16), (256, 8), (512, 4)), 1):
        ch *= width
        for j in range(4):
            stride = 2 if s > 1 and j == 0 else 1
            layers.append({"name": f"stage{s}.conv{j + 1}", "cin": prev if j == 0 else ch,
                           "cout": ch, "stride": stride, "in_size": size * stride,
                           "out_size": size, "pad_bit": 1, "form": form, "rsign": True,
                           "downsample": "concat" if stride == 2 else None, "rprelu": rprelu})
        prev = ch
    return {"layers": layers, "stem": {"cin": 3, "cout": 64 * width, "k": 3, "size": 32},
            "head": {"cin": prev, "classes": 10, "pool": 16},
            "formats": DEFAULT_FORMAT.as_dict()}


def test_block_ram_model_matches_measured_stages():
    # docs/benchmarks.md: DP16KD of stages 1-3 at P = 8, B = 64 (on-chip weights); stage 3
    # measured again when its split weights' tap 8 got a second window buffer (`bincount
    # report --target ecp5 --engines --engine-stages 3 --engine-forms binarized
    # --engine-no-fmax --engine-post-lanes 8 --engine-weight-ram auto --engine-constant-ram
    # auto`): 168, from 160 (163 with 512-word banks)
    meta = geometry_meta()
    got = [sum(block_resources(b)["bram"] for b in _blocks(meta, s, 8, 64)) for s in (1, 2, 3)]
    assert got == [100, 104, 168]
    assert MODEL["LUT_PER_BIT"] == 1.118 and round(MODEL["LUT_PER_LANE"]) == 701


@pytest.mark.parametrize("device,fps,clock", [("xczu7ev", 2000, 150), ("xc7a100t", 500, 100),
                                              ("ecp5-85f", 100, 100)])
def test_plans_are_legal_balanced_and_fit(device, fps, clock):
    meta = geometry_meta()
    plan = plan_network(meta, device, fps, clock)
    stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
    assert len(stages) == 4
    interval = plan["interval_cycles"]
    assert interval * CYCLE_MARGIN <= clock * 1e6 / fps
    for s, p in enumerate(stages, 1):
        blocks = _blocks(meta, s, p["lanes"], p["bits_per_cycle"])   # legal knobs
        assert all(b.cin % p["lanes"] == 0 and b.cin % p["bits_per_cycle"] == 0 for b in blocks)
        assert p["cycles_per_image"] == max(b.ideal_cycles for b in blocks)
        assert p["cycles_per_image"] >= (1 - MAX_IDLE) * interval
    stem = plan["parts"][0]
    assert stem["cycles_per_image"] == 32 * 32 * 9 * 64 // stem["lanes"] <= interval
    for k in ("lut", "ff", "bram", "dsp"):
        assert plan["total"][k] <= DEVICES[device][k]
    lines = format_plan(plan)
    assert len(lines) == 8 and lines[0].startswith(f"plan for {device}")


def test_xczu7ev_plan():
    plan = plan_network(geometry_meta(), "xczu7ev", 2000, 150)
    assert plan["interval_cycles"] == 73728
    assert [p.get("weights") for p in plan["parts"]].count("stream") == 1   # stage 4 only
    assert plan["parts"][4]["weights"] == "stream"


def test_baseline_form_counts_dsps():
    plan = plan_network(geometry_meta(form="baseline", rprelu="trained"), "xczu7ev", 500, 150)
    stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
    assert [p["dsp"] for p in stages] == [4 * 2 * p["lanes"] for p in stages]


def test_one_line_failures():
    meta = geometry_meta()
    with pytest.raises(BincountError, match=r"^LUT does not fit xc7a100t: the plan needs "
                                            r"[\d,]+ LUT, the device has 63,400 \([\d,]+ over"):
        plan_network(meta, "xc7a100t", 5000, 150)
    with pytest.raises(BincountError, match=r"^throughput: stage \d needs at least \d+ cycles"):
        plan_network(meta, "xczu7ev", 10 ** 7, 100)
    with pytest.raises(BincountError, match="device 'vu9p'; expected one of ecp5-85f"):
        plan_network(meta, "vu9p", 100)
    with pytest.raises(BincountError, match="target fps must be a positive number, got 0"):
        plan_network(meta, "xczu7ev", 0)
    for exc in (pytest.raises(BincountError),):
        with exc as info:
            plan_network(meta, "ecp5-45f", 100, 100)
        assert "\n" not in str(info.value)
        assert re.match(r"(LUT|FF|BRAM|DSP) does not fit ecp5-45f: ", str(info.value))
