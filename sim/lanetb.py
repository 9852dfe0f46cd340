"""Simulator-side testbench parts shared by the cocotb tests in ``sim/``.

Every bincount block is a valid-only pipeline: inputs with ``in_valid``, outputs with
``out_valid`` exactly ``latency`` cycles later, one item per cycle, no backpressure, clock
``clk`` and synchronous active-high reset ``rst``. :class:`StreamTB` owns the clock, the reset,
a driver (stimulus with random ``in_valid`` bubbles that carry random junk on the data inputs),
a monitor (samples the outputs every cycle) and a :class:`Scoreboard` (checks every output
against the expected value, in order and at the exact cycle).

Timing: the driver writes inputs and the monitor samples outputs on the falling clock edge, so
inputs are stable at the rising edge and sampled outputs are the values after it. An input
driven at falling edge ``k`` is therefore seen by the monitor at falling edge ``k + latency``.

A :class:`Vector` is one item: the input port values, the expected output values, its index and
a label (``"golden"`` for the model's vectors, the edge-case name otherwise) and the channel it
came from, all of which a failure message prints.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["Vector", "Scoreboard", "StreamTB", "numbered", "packed_to_int", "int_to_packed",
           "mask"]

CLOCK_PERIOD_NS = 10
#: Stop collecting after this many mismatches (the first ones are what matters).
MAX_ERRORS = 20


def mask(width: int) -> int:
    return (1 << width) - 1


def packed_to_int(row, n: int) -> int:
    """A packed bit vector (``uint8`` little bit order, docs/conventions.md) as the Python
    integer that drives an ``n``-bit port (element ``i`` is port bit ``i``)."""
    return int.from_bytes(bytes(row), "little") & mask(n)


def int_to_packed(value: int, n: int):
    """Inverse of :func:`packed_to_int`: the ``uint8`` array of an ``n``-bit integer."""
    import numpy as np

    return np.frombuffer(value.to_bytes((n + 7) // 8, "little"), dtype=np.uint8).copy()


@dataclass
class Vector:
    """One input item and the outputs it must produce."""

    index: int
    label: str
    inputs: dict
    expected: dict
    channel: int | None = None
    note: str = ""

    def describe(self) -> str:
        where = f"vector {self.index} ({self.label}"
        if self.channel is not None:
            where += f", channel {self.channel}"
        if self.note:
            where += f", {self.note}"
        return where + ")"


def numbered(items: list[dict]) -> list[Vector]:
    """:class:`Vector` objects, numbered in stream order, from dicts with the keys ``label``,
    ``inputs``, ``expected`` and optionally ``channel`` and ``note``."""
    return [Vector(index=i, label=it["label"], inputs=it["inputs"], expected=it["expected"],
                   channel=it.get("channel"), note=it.get("note", ""))
            for i, it in enumerate(items)]


@dataclass
class Scoreboard:
    """Expected outputs in order; checks value and arrival cycle of every output."""

    latency: int
    pending: deque = field(default_factory=deque)
    errors: list = field(default_factory=list)
    error_count: int = 0
    checked: int = 0

    def expect(self, vector: Vector, cycle: int) -> None:
        self.pending.append((cycle + self.latency, vector))

    def _error(self, msg: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(msg)
        cocotb.log.error(msg)

    def observe(self, cycle: int, valid: bool, values: dict) -> None:
        """Monitor callback: the outputs sampled in ``cycle``."""
        due = self.pending and self.pending[0][0] == cycle
        if valid and not self.pending:
            self._error(f"cycle {cycle}: out_valid high with no vector outstanding "
                        f"(outputs {values})")
            return
        if valid and not due:
            self._error(f"cycle {cycle}: out_valid high but the next vector, "
                        f"{self.pending[0][1].describe()}, is due in cycle {self.pending[0][0]}")
            return
        if not valid:
            if due:
                _, vec = self.pending.popleft()
                self._error(f"{vec.describe()}: no output in cycle {cycle} "
                            f"(out_valid low {self.latency} cycles after in_valid)")
            return
        _, vec = self.pending.popleft()
        self.checked += 1
        for name, want in vec.expected.items():
            got = values[name]
            if got != want:
                self._error(f"{vec.describe()}: {name} expected {want}, got {got}")

    def report(self, total: int) -> None:
        """Fail the cocotb test if anything went wrong."""
        if self.pending:
            self._error(f"{len(self.pending)} vector(s) never produced an output; first: "
                        f"{self.pending[0][1].describe()}")
        if self.checked != total and not self.errors:
            self._error(f"checked {self.checked} outputs for {total} vectors")
        if self.errors:
            shown = "\n  ".join(self.errors)
            listed = (f"; first {len(self.errors)} listed" if self.error_count > len(self.errors)
                      else "")
            raise AssertionError(f"{self.error_count} error(s) in {total} vectors{listed}:"
                                 f"\n  {shown}")


class StreamTB:
    """Clock, reset, driver, monitor and scoreboard around one valid-pipelined block.

    ``manifest`` is the block's JSON manifest (``bincount.hw.emit``): it gives the port widths,
    signedness and the latency. ``bubble`` is the probability of an idle cycle before a vector.
    """

    def __init__(self, dut, manifest: dict, *, seed: int, bubble: float = 0.25):
        self.dut = dut
        self.ports = {p["name"]: p for p in manifest["ports"]}
        self.latency = int(manifest["latency"])
        self.inputs = [p["name"] for p in manifest["ports"]
                       if p["direction"] == "input" and p["name"] not in ("clk", "rst",
                                                                          "in_valid")]
        self.outputs = [p["name"] for p in manifest["ports"]
                        if p["direction"] == "output" and p["name"] != "out_valid"]
        self.rng = random.Random(seed)
        self.bubble = bubble
        self.cycle = 0
        self.scoreboard = Scoreboard(self.latency)
        self.log = cocotb.log

    # -- signal helpers ----------------------------------------------------------------------

    def _write(self, name: str, value: int) -> None:
        port = self.ports[name]
        width = port["width"]
        lo = -(1 << (width - 1)) if port["signed"] else 0
        hi = (1 << (width - 1)) - 1 if port["signed"] else mask(width)
        if not lo <= value <= hi:
            raise ValueError(f"value {value} does not fit port {name} "
                             f"({'signed' if port['signed'] else 'unsigned'} {width} bits)")
        getattr(self.dut, name).value = value & mask(width)

    def _read(self, name: str) -> int:
        value = getattr(self.dut, name).value
        if self.ports[name]["width"] == 1:
            return int(value)  # a Logic, not a LogicArray
        return value.to_signed() if self.ports[name]["signed"] else value.to_unsigned()

    def _junk(self) -> None:
        for name in self.inputs:
            getattr(self.dut, name).value = self.rng.getrandbits(self.ports[name]["width"])

    # -- phases ------------------------------------------------------------------------------

    async def start(self, reset_cycles: int = 3) -> None:
        """Start the clock and hold reset; ``in_valid`` toggles randomly meanwhile and must
        not produce an output (the reset clears the valid pipeline)."""
        Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns").start(start_high=False)
        self.dut.rst.value = 1
        self.dut.in_valid.value = 0
        self._junk()
        for _ in range(reset_cycles):
            await FallingEdge(self.dut.clk)
            self.dut.in_valid.value = self.rng.getrandbits(1)
            self._junk()
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.dut.in_valid.value = 0

    def _monitor(self) -> None:
        valid = bool(self._read("out_valid"))
        values = {name: self._read(name) for name in self.outputs} if valid else {}
        self.scoreboard.observe(self.cycle, valid, values)

    def _drive(self, vector: Vector | None) -> None:
        if vector is None:
            self.dut.in_valid.value = 0
            self._junk()
            return
        for name in self.inputs:
            self._write(name, vector.inputs[name])
        self.dut.in_valid.value = 1
        self.scoreboard.expect(vector, self.cycle)

    async def run(self, vectors: list[Vector]) -> None:
        """Stream ``vectors`` with random bubbles, drain the pipeline, then check."""
        missing = [n for n in self.inputs if n not in vectors[0].inputs] if vectors else []
        if missing:
            raise ValueError(f"vectors lack inputs {missing} of the block")
        queue = deque(vectors)
        drain = 0
        while queue or drain < self.latency + 4:
            await FallingEdge(self.dut.clk)
            self.cycle += 1
            self._monitor()  # outputs after the rising edge, before new inputs are written
            if queue and self.rng.random() >= self.bubble:
                self._drive(queue.popleft())
            else:
                self._drive(None)
                if not queue:
                    drain += 1
        self.log.info("%d vectors in %d cycles, latency %d", len(vectors), self.cycle,
                      self.latency)
        self.scoreboard.report(len(vectors))
