"""cocotb testbench of the AXI4-Stream network (the board design of ``hw/board_kv260.py``):
weights loaded through ``s_axis_w``, images in through ``s_axis``, results out of ``m_axis``,
driven by ``cocotbext-axi`` (AxiStreamSource / AxiStreamSink) with random ``tvalid`` gaps on
both sources and random ``tready`` stalls on the sink.

Default suite: the calibrated ReActNet-18 at width 0.0625 of ``sim/test_network.py`` (P = B =
4), stage 4 in its streamed-weight form behind the weight store, one real CIFAR-10 test image;
its class and all 10 logits must equal the integer reference, word 0 must carry no frame
error and frame number 0. ``BINCOUNT_FULL_AXIS=1`` runs the same at full width (width 1.0, the
board's default knobs; a Verilator build of the whole full-width design, far slower than the
default suite allows, and not part of ``BINCOUNT_FULL=1``). ``BINCOUNT_STALL`` sets the gap /
stall probability (default 0.3).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from . import simlib

FULL_AXIS = os.environ.get("BINCOUNT_FULL_AXIS") == "1"
#: The reduced network and knobs of ``sim/test_network.py``.
KNOBS = {"lanes": 4, "bits_per_cycle": 4}


def _pauses(rng, p):
    while True:
        yield int(rng.random() < p)


@cocotb.test()
async def axis_image(dut):
    """Weights, then one image through the AXI4-Stream ports; class and logits compared."""
    from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

    from bincount.gateware.axis_network import decode_result
    from bincount.model.export.network_golden import load_network_golden

    case = simlib.load_case()
    _, gold = load_network_golden(case["golden"], check=False)
    load_words = np.load(case["load_words"], allow_pickle=False)
    rng = random.Random(case["seed"])
    p = float(case["stall"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    wsrc = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_w"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for port in (src, wsrc):
        port.set_pause_generator(_pauses(rng, p))
    sink.set_pause_generator(_pauses(rng, p))
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    assert int(dut.weights_loaded.value) == 0

    images = int(case["images"])
    await src.send(AxiStreamFrame(gold["pixels"][0].tobytes()))   # before the weights: it waits
    await wsrc.send(AxiStreamFrame(load_words.astype("<u4").tobytes()))
    for k in range(1, images):
        await src.send(AxiStreamFrame(gold["pixels"][k].tobytes()))
    failures = []
    for k in range(images):
        frame = await sink.recv()
        data = bytes(frame.tdata)
        assert len(data) == 4 * case["result_words"], f"image {k}: {len(data)} result bytes"
        words = [int.from_bytes(data[j:j + 4], "little") for j in range(0, len(data), 4)]
        r = decode_result(words)
        exp = (int(gold["prediction"][k]), gold["logits"][k].tolist())
        if (r["class"], r["logits"]) != exp or r["short"] or r["long"] or r["frame"] != k:
            failures.append(f"image {k}: class {r['class']} logits {r['logits']} flags "
                            f"short={r['short']} long={r['long']} frame {r['frame']}; "
                            f"expected class {exp[0]} logits {exp[1]}, no flags, frame {k}")
    assert int(dut.weights_loaded.value) == 1
    with open(case["results"], "w") as f:
        json.dump({"images": images, "stall": p, "failures": failures}, f, indent=2)
    assert not failures, "\n".join(failures)


def _golden(full):
    from .test_network import network_golden_path

    if not full:
        return network_golden_path("binarized")

    def make(path):
        from bincount.model.export.network_golden import save_network_golden
        save_network_golden(path, "binarized", 1.0, seed=1, test_images=1)

    return simlib._cached_vectors("network_binarized_w1.0_s1_1img", make)


@pytest.mark.parametrize("width", [
    "reduced",
    pytest.param("full", marks=pytest.mark.skipif(
        not FULL_AXIS, reason="BINCOUNT_FULL_AXIS=1: the full-width AXI4-Stream design "
                              "(a very long Verilator build and run)"))])
def test_axis_network(request, width):
    from bincount.hw.axis_emit import axis_design
    from bincount.model.export.network_golden import load_network_golden

    golden = _golden(width == "full")
    export, gold = load_network_golden(golden, check=False)
    with simlib.locked_build_dir(request.node.name) as build_dir:
        d = axis_design(export, KNOBS if width == "reduced" else {},
                        cache_dir=simlib.verilog_cache_dir())
        net = simlib.write_design(build_dir, d["network_verilog"], d["network_manifest"])
        wrapper = build_dir / f"{d['wrapper_module']}.v"
        simlib._write_if_changed(wrapper, d["wrapper_verilog"])
        words = build_dir / "load_words.npy"
        np.save(words, d["load_words"], allow_pickle=False)
        runner = simlib.build([net, wrapper], d["wrapper_module"], build_dir)
        case = {"golden": str(golden), "load_words": str(words), "seed": simlib.default_seed(),
                "stall": float(os.environ.get("BINCOUNT_STALL", "0.3")), "images": 1,
                "result_words": d["result_words"],
                "results": str(build_dir / "axis_results.json")}
        assert gold["pixels"].shape[0] >= case["images"]
        simlib.run(runner, __name__, d["wrapper_module"], build_dir, case)
        result = json.loads(Path(case["results"]).read_text())
        assert result["images"] == 1 and not result["failures"]
