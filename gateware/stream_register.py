"""Stream register: a two-entry skid buffer that registers every signal of a stream, ``ready``
included.

Between two components, a stream's ``ready`` runs backwards combinationally: the consumer's
decision to accept reaches the producer's pop logic in the same cycle. This register cuts that
path. ``i.ready`` is a flip-flop (high while the skid entry is empty); a beat that arrives while
``o`` is stalled waits in the skid entry, so no beat is lost or repeated::

    i.ready   = ~skid_valid                               (registered)
    o.valid   = main_valid, o.payload = main              (registered)
    main  <- skid if skid_valid else i, when o.ready or ~main_valid
    skid  <- i, when i.valid & i.ready and main is held (o.valid & ~o.ready)

Latency: 1 cycle from ``i`` to ``o``; throughput one beat per cycle while ``o.ready`` stays high.
Order is kept. Clock domain ``sync``; ``rst`` empties both entries.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """A registered stream of ``width``-bit payloads (module docstring)."""

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
        skid_valid = Signal(name="skid_valid")
        main = Signal(self._width, name="main", reset_less=True)
        skid = Signal(self._width, name="skid", reset_less=True)
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.valid.eq(main_valid),
                     self.o.payload.eq(main)]
        with m.If(self.o.ready | ~main_valid):
            with m.If(skid_valid):
                m.d.sync += [main.eq(skid), main_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
