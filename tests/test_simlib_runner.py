"""``sim/simlib.py`` overrides a private method of cocotb's Verilator runner (``_build_command``)
to compile the models faster. The override depends on what that method returns; this test pins
the method's source, so that a cocotb release that changes it fails here, loudly, instead of
silently slowing or breaking the Verilator builds."""

import hashlib
import importlib.util
import inspect
from pathlib import Path

import cocotb
import pytest

SIMLIB = Path(__file__).resolve().parent.parent / "sim" / "simlib.py"


@pytest.fixture(scope="module")
def simlib():
    spec = importlib.util.spec_from_file_location("pinned_runner_simlib", SIMLIB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overridden_cocotb_method_is_the_pinned_one(simlib):
    pin = simlib.PINNED_RUNNER
    base = simlib.runner_base()
    method = getattr(base, "_build_command", None)
    assert method is not None, (
        f"cocotb {cocotb.__version__}: {base.__module__}.{base.__qualname__} has no "
        f"_build_command any more; sim/simlib.py overrides it (_runner_class): rewrite the "
        f"override for this cocotb, or pin cocotb to {pin['cocotb']}")
    assert f"{base.__module__}.{base.__qualname__}._build_command" == pin["method"]
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()
    assert digest == pin["source_sha256"], (
        f"cocotb {cocotb.__version__} changed {pin['method']} (pinned: cocotb {pin['cocotb']}, "
        f"source sha256 {pin['source_sha256'][:12]}..., now {digest[:12]}...). sim/simlib.py "
        f"overrides this private method (_runner_class) to drop --public-flat-rw and add make "
        f"variables: read the new method, check the override still applies, then update "
        f"PINNED_RUNNER in sim/simlib.py")
    assert list(inspect.signature(method).parameters) == ["self"]


def test_override_keeps_its_changes(simlib, tmp_path):
    """The commands of a build through the overridden method (run nothing): no
    --public-flat-rw with ports only, the cached run-time objects copied before make, and the
    make variables."""
    from cocotb_tools.runner import Verilog

    runner = simlib._runner_class()()
    runner.public_ports_only = True
    runner.runtime_objects = [tmp_path / "verilated.o"]
    commands = []
    runner._execute = lambda cmds, cwd: commands.extend(cmds)
    v = tmp_path / "top.v"
    v.write_text("module top(input clk); endmodule\n")
    runner.build(sources=[Verilog(v)], hdl_toplevel="top", build_dir=str(tmp_path / "b"),
                 build_args=list(simlib.VERILATOR_ARGS), always=True)
    flat = [str(a) for cmd in commands for a in cmd]
    assert "--public-flat-rw" not in flat and "-cc" in flat
    assert commands[-2][0] == "cp" and str(tmp_path / "verilated.o") in commands[-2]
    assert Path(str(commands[-1][0])).name == "make"
    assert all(f"{k}={v}" in commands[-1] for k, v in simlib.MAKE_VARS.items())
