"""End to end without a board: ``bincount infer`` talks to a Verilator simulation of the board
core (:class:`~bincount.gateware.board_core.BoardCore`) through its UART pins.

The network is the calibrated ReActNet-18 at width 0.0625 of ``sim/test_network.py`` (same
golden file: two real CIFAR-10 test images from the bundled sample, run by the integer
reference), written out as an export file. The board core is built with a UART divisor of
:data:`DIVISOR` clock cycles per bit. The cocotb test

1. sends garbage, INFO and a frame with an unknown command through ``uart_rx`` bit by bit and
   checks the replies read bit by bit from ``uart_tx`` (INFO = what the build says, the error
   reply byte for byte);
2. opens a pseudo-terminal pair and runs the real command line, ``bincount infer --port <the
   pty> --export <the export> --json test:I test:J``, as a subprocess; a coroutine moves bytes
   between the pty and the UART pins, bit by bit at the divisor, both ways;
3. compares the classes and all logits that ``bincount infer`` prints with the integer
   reference's, and the LEDs with the last class.

Results (the CLI's JSON, simulated cycles, wall times) go to ``board_results.json`` in the
build folder.

With ``BINCOUNT_FULL=1`` the same runs on the project's trained default network
(``networks/reactnet18_w0.25.npz``, at the knobs ``bincount generate network`` picks, checked
with ``--export`` on that file) and its ``TRAINED_IMAGES`` (8) test images of ``sim/test_network.py``.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import sys
import time
import tty

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

from bincount import protocol as P

from . import simlib

#: UART clock cycles per bit in the simulation (a board at 115,200 baud uses hundreds).
DIVISOR = 4
#: Clock period in the simulation (ns).
PERIOD_NS = 10
#: Longest wall time of the whole exchange (s).
WALL_LIMIT = 1200
FULL = os.environ.get("BINCOUNT_FULL") == "1"


class UartPins:
    """Drives ``uart_rx`` and reads ``uart_tx`` of ``dut`` bit by bit (8N1, LSB first)."""

    def __init__(self, dut, divisor):
        self.dut, self.bit_ns = dut, divisor * PERIOD_NS
        self.to_board = bytearray()
        self.from_board = bytearray()
        self.on_byte = None            # called with each byte read from uart_tx
        self.framing_errors = 0

    async def drive(self):
        """Send the bytes of :attr:`to_board`; the line idles high between them."""
        dut = self.dut
        dut.uart_rx.value = 1
        while True:
            if not self.to_board:
                await Timer(10 * self.bit_ns, unit="ns")
                continue
            byte = self.to_board.pop(0)
            for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                dut.uart_rx.value = level
                await Timer(self.bit_ns, unit="ns")

    async def listen(self):
        """Read bytes from ``uart_tx``: a falling edge, then a sample in the middle of every
        bit."""
        dut = self.dut
        while True:
            await FallingEdge(dut.uart_tx)
            await Timer(self.bit_ns // 2, unit="ns")
            assert int(dut.uart_tx.value) == 0, "uart_tx: a start bit shorter than half a bit"
            byte = 0
            for k in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(dut.uart_tx.value) << k
            await Timer(self.bit_ns, unit="ns")
            if int(dut.uart_tx.value) != 1:
                self.framing_errors += 1
            self.from_board.append(byte)
            if self.on_byte is not None:
                self.on_byte(byte)


async def read_frames(pins, decoder, count, max_ns):
    """Wait for ``count`` frames from the board (at most ``max_ns`` of simulated time)."""
    frames, waited = [], 0
    step = 100 * pins.bit_ns
    while len(frames) < count:
        assert waited < max_ns, (f"{len(frames)} of {count} replies after {waited} ns; bytes "
                                 f"from the board: {bytes(pins.from_board).hex()}")
        await Timer(step, unit="ns")
        waited += step
        frames += decoder.feed(bytes(pins.from_board))
        pins.from_board.clear()
    return frames


@cocotb.test()
async def board_end_to_end(dut):
    """INFO and an error reply through the pins, then bincount infer on two test images."""
    case = simlib.load_case()
    manifest = case["manifest"]
    info = P.parse_info(bytes.fromhex(manifest["info"]))
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    dut.uart_rx.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    pins = UartPins(dut, DIVISOR)
    cocotb.start_soon(pins.drive())
    cocotb.start_soon(pins.listen())
    byte_ns = 10 * pins.bit_ns

    # 1. INFO and an unknown command, straight through the pins
    decoder = P.FrameDecoder()
    pins.to_board += b"\x00\xb1\x42\xb1" + P.info_request() + P.frame(0x5A, b"\x01\x02\x03")
    frames = await read_frames(pins, decoder, 2, 200 * byte_ns)
    assert (frames[0].type, frames[0].payload) == (P.REPLY_INFO, bytes.fromhex(manifest["info"]))
    assert (frames[1].type, frames[1].payload) == (P.REPLY_ERROR, P.error_payload(
        P.ERR_UNKNOWN_COMMAND, 0x5A)), frames[1]
    assert decoder.skipped == 0 and pins.framing_errors == 0
    assert info.cycles_per_image == manifest["cycles_per_image"] and info.divisor == DIVISOR

    # 2. the command line on a pseudo-terminal, bytes moved between it and the pins
    master, slave = os.openpty()
    tty.setraw(slave)                     # no echo, no line editing before pyserial opens it
    fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
    port = os.ttyname(slave)
    pins.on_byte = lambda b: os.write(master, bytes((b,)))
    indices = case["indices"]
    argv = [case["python"], "-m", "bincount", "infer", "--port", port, "--export",
            case["export"], "--json", "--timeout", str(WALL_LIMIT)] + [f"test:{i}"
                                                                       for i in indices]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=case["env"])
    cycles0 = int(get_sim_time("ns")) // PERIOD_NS
    try:
        while proc.poll() is None:
            assert time.monotonic() - t0 < WALL_LIMIT, "bincount infer did not finish"
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                data = b""
            except OSError:               # the other side closed
                data = b""
            if data:
                pins.to_board += data
            if not pins.to_board:
                # nothing to send: let the host run (it may be starting up) before the
                # simulation moves on
                select.select([master], [], [], 0.002)
            await Timer(byte_ns * 8, unit="ns")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(master)
        os.close(slave)
    wall = time.monotonic() - t0
    cycles = int(get_sim_time("ns")) // PERIOD_NS - cycles0
    assert proc.returncode == 0, f"bincount infer exit {proc.returncode}: {err.decode()}"
    printed = json.loads(out)

    # 3. the printed results against the integer reference
    exp_logits, exp_pred = case["logits"], case["predictions"]
    got = [(r["image"], r["class"], r["logits"]) for r in printed["images"]]
    want = [(f"test:{i}", p, lg) for i, p, lg in zip(indices, exp_pred, exp_logits)]
    with open(case["results"], "w") as f:
        json.dump({"infer": printed, "cycles": cycles, "wall_s": round(wall, 2),
                   "expected": want}, f, indent=2)
    assert got == want
    assert printed["board"] == info.as_dict()
    leds = int(dut.leds.value)
    assert leds & 0xF == exp_pred[-1] and not leds & 0x20, f"leds {leds:08b}"
    assert pins.framing_errors == 0


@pytest.mark.parametrize("form", [
    "binarized",
    pytest.param("trained", marks=pytest.mark.skipif(
        not FULL, reason="BINCOUNT_FULL=1: the trained default network (width 0.25)"))])
def test_board(request, form):
    from bincount.hw.designs import board_design
    from bincount.infer_cli import load_images
    from bincount.model.export.network_file import DEFAULT_EXPORT, save_export
    from bincount.model.export.network_golden import load_network_golden

    from .test_network import network_golden_path, network_knobs_for

    golden = network_golden_path(form)
    with simlib.locked_build_dir(request.node.name) as build_dir:
        times = {}
        t0 = time.perf_counter()
        export, gold = load_network_golden(golden, check=False)
        knobs = network_knobs_for(form)
        indices = [int(i) for i in gold["meta"]["image_indices"]]
        # the command line loads these test images itself: the same bytes as the reference's
        loaded = load_images([f"test:{i}" for i in indices])
        assert [b for _, b in loaded] == [p.tobytes() for p in gold["pixels"]]
        if form == "trained":
            export_path = DEFAULT_EXPORT      # the project's file, as a user would name it
        else:
            export_path = build_dir / "export.npz"
            save_export(export_path, {k: v for k, v in export.items() if k != "meta"})
        text, manifest = board_design(export, dict(knobs), DIVISOR,
                                      cache_dir=simlib.verilog_cache_dir())
        vpath = simlib.write_design(build_dir, text, manifest)
        times["emit_s"] = time.perf_counter() - t0
        runner = simlib.build([vpath], manifest["module"], build_dir)
        times["build_s"] = time.perf_counter() - t0 - times["emit_s"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(simlib.REPO_ROOT)]
                                            + [p for p in sys.path if p])
        case = {"indices": indices, "logits": gold["logits"].tolist(),
                "predictions": [int(v) for v in gold["prediction"]],
                "manifest": manifest, "export": str(export_path),
                "python": sys.executable, "env": env,
                "results": str(build_dir / "board_results.json")}
        try:
            simlib.run(runner, __name__, manifest["module"], build_dir, case)
        finally:
            times["sim_s"] = time.perf_counter() - t0 - times["emit_s"] - times["build_s"]
            (build_dir / "timings.json").write_text(
                json.dumps({k: round(v, 2) for k, v in times.items()}) + "\n")
