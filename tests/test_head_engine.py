"""The head engine in the Amaranth simulator: the last stage's output of two real CIFAR-10 test
images back to back (golden tensors of the small calibrated networks), random input gaps and
output stalls; pool sums, FC accumulators, logits and the predicted class compared with the
integer reference (``head.pool_sum``, ``head.acc``, ``logits``, ``prediction``)."""

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.gateware.block_params import to_beats
from bincount.gateware.head_engine import HeadEngine

from network_cases import drive_stream, small_network
from pipeline_sim import elaborated


def _run(export, maps, lanes, stall, seed=0):
    dut = HeadEngine(export, lanes)
    beats = sum((to_beats(x, lanes) for x in maps), [])
    out, seen, log = drive_stream(
        dut, beats, len(maps), seed=seed, gap=stall, stall=stall,
        watch={"pool": (dut.pool_valid, dut.pool_c, dut.pool_value),
               "acc": (dut.acc_valid, dut.acc_k, dut.acc_value)})
    results = [(int(o.prediction), [int(o.logits[k]) for k in range(dut.params.classes)])
               for o in out]
    return dut, results, seen, log


@pytest.mark.parametrize("form,lanes,stall", [("binarized", 4, 0.3), ("baseline", 8, 0.5)])
def test_head_matches_reference(form, lanes, stall):
    export, gold = small_network(form)
    last = export["meta"]["layers"][-1]["name"]
    maps = list(gold[f"{last}.output"])
    dut, results, seen, _ = _run(export, maps, lanes, stall)
    c, classes = dut.params.cin, dut.params.classes
    for k in range(2):
        pool = [v for _, _, v in seen["pool"][k * c:(k + 1) * c]]
        assert [ch for _, ch, _ in seen["pool"][k * c:(k + 1) * c]] == list(range(c))
        assert pool == gold["head.pool_sum"][k].tolist(), f"image {k}: pool sums differ"
        acc = [v for _, _, v in seen["acc"][k * classes:(k + 1) * classes]]
        assert acc == gold["head.acc"][k].tolist(), f"image {k}: FC accumulators differ"
        pred, logits = results[k]
        assert logits == gold["logits"][k].tolist(), f"image {k}: logits differ"
        assert pred == int(gold["prediction"][k]), f"image {k}: class {pred}"
    assert len(results) == 2


def test_head_ties_and_latency():
    """Equal top logits give the lowest index; with no gaps or stalls the result comes
    ``latency`` cycles after the image's last beat."""
    export, gold = small_network("binarized")
    ex = dict(export)
    w = np.zeros_like(np.asarray(export["head.weight"]))
    off = np.zeros_like(np.asarray(export["head.offset"]))
    off[[3, 7]] = 5 << 20                       # classes 3 and 7 tie at the top
    off[9] = -(5 << 20)
    ex.update({"head.weight": w, "head.offset": off})
    maps = [gold["stage4.conv4.output"][0]]
    dut, results, _, log = _run(ex, maps, 4, 0.0)
    pred, logits = results[0]
    assert pred == 3 and logits[3] == logits[7] > max(logits[:3] + logits[4:7])
    assert log["out"][0] - log["in"][-1] == dut.latency
    assert dut.latency == 3 + 10 * 32 + 7


def test_head_refuses_bad_lanes_and_non_pow2_multiplier():
    export, _ = small_network("binarized")
    with pytest.raises(BincountError, match="head lanes must be a power of two dividing "
                                            "C = 32, got 64"):
        HeadEngine(export, 64)
    ex = dict(export)
    mul = np.asarray(export["head.mul"]).copy()
    mul[2] = 3
    ex["head.mul"] = mul
    with pytest.raises(BincountError, match=r"head.mul\[2\] = 3 is not a positive power of two"):
        HeadEngine(ex, 4)
    elaborated(HeadEngine(export, 32))
