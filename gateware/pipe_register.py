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

from amaranth.hdl import Module, Mux, Signal

from .stream_register import StreamRegister

__all__ = ["PipeRegister"]


class PipeRegister(StreamRegister):
    """A stream's ``valid`` and ``payload`` registered, ``ready`` passed back (module
    docstring); the ports, the width check and the latency (1) are the
    :class:`~bincount.gateware.stream_register.StreamRegister`'s."""

    def next_valid(self):
        """``o.valid`` of the next cycle as an expression of this cycle's signals (for a
        consumer that registers something a cycle ahead): ``i.valid`` when ``i.ready``, else
        ``o.valid``."""
        return Mux(self.i.ready, self.i.valid, self.o.valid)

    def elaborate(self, platform):
        m = Module()
        main_valid = Signal(name="main_valid")
        main = Signal(self._width, name="main", reset_less=True)
        m.d.comb += [self.i.ready.eq(self.o.ready | ~main_valid), self.o.valid.eq(main_valid),
                     self.o.payload.eq(main)]
        m.d.sync += main_valid.eq(self.next_valid())
        with m.If(self.i.ready):
            m.d.sync += main.eq(self.i.payload)
        return m
