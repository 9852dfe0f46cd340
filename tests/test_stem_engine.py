"""The stem engine in the Amaranth simulator: two real CIFAR-10 test images back to back as
bytes, random input gaps and output stalls, every output element compared with the integer
reference (``NetworkReference.stem`` and the requantisation: golden ``stem.output``)."""

import os

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.gateware.block_params import from_beats
from bincount.gateware.stem_engine import StemEngine

from network_cases import drive_stream, small_network
from pipeline_sim import elaborated


def image_bytes(pixels):
    """Stem input beats of ``uint8 [B, 32, 32, 3]`` images: R, G, B per pixel, raster order."""
    return [int(v) for v in np.asarray(pixels, dtype=np.uint8).ravel()]


FULL = os.environ.get("BINCOUNT_FULL") == "1"


@pytest.mark.parametrize("form,lanes,stall", [
    ("binarized", 4, 0.3),
    pytest.param("baseline", 2, 0.5, marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: two lanes, the other export"))])
def test_stem_matches_reference(form, lanes, stall):
    export, gold = small_network(form)
    dut = StemEngine(export, lanes)
    p = dut.params
    per = p.size * p.size * p.groups
    out, _, _ = drive_stream(dut, image_bytes(gold["pixels"]), 2 * per, seed=3, gap=stall,
                             stall=stall)
    for k in range(2):
        got = from_beats(out[k * per:(k + 1) * per], p.cout, p.size, lanes)
        exp = gold["stem.output"][k]
        bad = np.argwhere(got != exp)
        assert len(bad) == 0, (f"image {k}: {len(bad)} of {got.size} stem outputs differ; first "
                               f"[c, y, x] = {bad[0].tolist()}: expected {exp[tuple(bad[0])]}, "
                               f"got {got[tuple(bad[0])]}")
    assert p.multipliers == 3 * lanes


def test_stem_cycles_and_latency():
    """No gaps, no stalls: one tap per cycle (a beat every 9 cycles once running, no tap
    lost) and the documented latency from a group's last tap to its beat on ``o``."""
    export, gold = small_network("binarized")
    dut = StemEngine(export, 4)
    p = dut.params
    per = p.size * p.size * p.groups
    out, seen, log = drive_stream(dut, image_bytes(gold["pixels"][:1]), per, gap=0.0,
                                  stall=0.0,
                                  watch={"last": (dut.issue_last,), "issue": (dut.issue,)})
    assert p.ideal_cycles == 32 * 32 * 9
    half = log["out"][per // 2:]            # from row 16 on: never waiting for input
    assert half[-1] - half[0] == 9 * (len(half) - 1)
    assert len(seen["issue"]) == per * 9
    assert log["out"][0] - seen["last"][0][0] == dut.latency


def test_stem_refuses_bad_lanes():
    export, _ = small_network("binarized")
    with pytest.raises(BincountError, match="stem lanes must be a power of two dividing C0 = 4, "
                                            "got 3"):
        StemEngine(export, 3)
    with pytest.raises(BincountError, match="got 8"):
        StemEngine(export, 8)
    elaborated(StemEngine(export, 1))
