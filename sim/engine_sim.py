"""Emit, build and run the stage engines on Verilator (the pytest side of
``sim/test_stage_engine.py``).

:func:`run_stage` emits the stage engine of an engine-golden file (with observation taps, so the
testbench sees every layer's output) into ``sim_build/<test id>/``, builds it with
:func:`simlib.build` (reused when the Verilog is unchanged) and runs the cocotb module with the
case description. The Verilog is re-emitted only when the golden export, the knobs or the
generator sources change (the build layer's Verilog store).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from bincount.hw.knobs import DEFAULT_BITS_PER_CYCLE, DEFAULT_LANES
from bincount.model.export.engine_golden import load_engine_golden

from . import simlib

__all__ = ["SIM_KNOBS", "emit_stage_cached", "run_stage"]

#: Parallelism of the engines under test: the engines' defaults, so that the benchmark reuses
#: the suite's Verilator builds.
SIM_KNOBS = {"lanes": DEFAULT_LANES, "bits_per_cycle": DEFAULT_BITS_PER_CYCLE}


def emit_stage_cached(golden: Path, stage: int, lanes: int, bits_per_cycle: int,
                      out_dir: Path, layers: list[str] | None = None,
                      weights: str = "memory",
                      post_lanes: int | None = None) -> tuple[Path, dict]:
    """Verilog (with taps) and manifest of ``stage`` built from the export inside ``golden``
    (``weights="stream"``: the streamed-weight form), converted once per export, knobs and
    generator sources (:func:`simlib.emit_stage`)."""
    export, _ = load_engine_golden(golden, check=False)
    return simlib.emit_stage(export, stage, lanes, bits_per_cycle, out_dir, layers=layers,
                             weights=weights, post_lanes=post_lanes)


def run_stage(test_id: str, test_module: str, golden: Path, stage: int, case: dict | None = None,
              *, lanes: int | None = None, bits_per_cycle: int | None = None,
              layers: list[str] | None = None, seed: int | None = None,
              weights: str = "memory", post_lanes: int | None = None) -> Path:
    """Emit, build and simulate the engine of ``stage``; timings go to ``timings.json``."""
    lanes = SIM_KNOBS["lanes"] if lanes is None else lanes
    bits_per_cycle = SIM_KNOBS["bits_per_cycle"] if bits_per_cycle is None else bits_per_cycle
    with simlib.locked_build_dir(test_id) as build_dir:
        times = {}
        t0 = time.perf_counter()
        vpath, manifest = emit_stage_cached(Path(golden), stage, lanes, bits_per_cycle,
                                            build_dir, layers, weights, post_lanes)
        times["emit_s"] = time.perf_counter() - t0
        runner = simlib.build([vpath], manifest["module"], build_dir)
        times["build_s"] = time.perf_counter() - t0 - times["emit_s"]
        seed = simlib.default_seed() if seed is None else seed
        full = dict(case or {})
        full.update({"golden": str(golden), "stage": stage, "manifest": manifest, "seed": seed,
                     "results": str(build_dir / "engine_results.json")})
        try:
            return simlib.run(runner, test_module, manifest["module"], build_dir, full,
                              seed=seed)
        finally:
            times["sim_s"] = time.perf_counter() - t0 - times["emit_s"] - times["build_s"]
            (build_dir / "timings.json").write_text(
                json.dumps({k: round(v, 2) for k, v in times.items()}) + "\n")


async def start_stream_engine(dut, reset_cycles: int = 3) -> None:
    """Start a 100 MHz clock on a stream engine (stage or whole network) and hold ``rst`` for
    ``reset_cycles`` rising edges with ``i.valid`` and ``o.ready`` low."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(reset_cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
