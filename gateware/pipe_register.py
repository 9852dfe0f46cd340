"""Pipe register: one register stage on a stream's ``valid`` and ``payload``; ``ready`` passes
back through one gate.

    i.ready   = o.ready | ~main_valid                     (combinational, no i.valid in it)
    o.valid   = main_valid, o.payload = main              (registered)
    main  <- i, when i.ready (main_valid <- i.valid)

Cheaper than a :class:`~bincount.gateware.stream_register.StreamRegister` (no skid entry and
no multiplexer in front of the payload register: its flip-flops load through their clock
enable), for a consumer whose ``ready`` is itself (close to) a flip-flop, so that the path
back to the producer stays one gate long.

Latency: 1 cycle from ``i`` to ``o``; throughput one beat per cycle while ``o.ready`` stays high.
Order is kept. Clock domain ``sync``; ``rst`` empties the register.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["PipeRegister"]


class PipeRegister(wiring.Component):
    """A stream's ``valid`` and ``payload`` registered, ``ready`` passed back (module
    docstring)."""

    def __init__(self, width):
        self._width = check_int("width", width, (1, 1 << 20))
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    @property
    def latency(self):
        """Cycles from a beat on ``i`` to the same beat on ``o``: 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        main_valid = Signal(name="main_valid")
        main = Signal(self._width, name="main", reset_less=True)
        m.d.comb += [self.i.ready.eq(self.o.ready | ~main_valid), self.o.valid.eq(main_valid),
                     self.o.payload.eq(main)]
        with m.If(self.i.ready):
            m.d.sync += [main.eq(self.i.payload), main_valid.eq(self.i.valid)]
        return m
