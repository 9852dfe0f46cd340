"""Claim queue: a small stream queue whose words are claimed in one cycle and taken in the next,
so that the consumer's decision never drives the queue's wide registers directly.

A stream consumer that decides each cycle whether to take a word (a fold issues only with its
weight word) would, with a plain stream register, feed that decision into the enables of every
payload flip-flop of the register: hundreds of loads on a path that already holds the decision
logic. Here the decision only claims a word, against a registered count of unclaimed words,
and the word is taken one cycle later from a register-file queue whose read pointer is the
only thing the (now registered) claim drives::

    i.ready   = held < DEPTH                      (held: words in the queue, a register)
    claimable = unclaimed != 0                    (unclaimed: a register; the consumer may
                                                   assert ``claim`` only when it is high)
    cycle t   : claim            -> unclaimed - 1
    cycle t+1 : data = queue[rd] ->  rd + 1, held - 1       (``data`` is combinational from
                                                            registers: a DEPTH:1 multiplexer)

The write side has the same problem: a word register's enable (``push`` and the write pointer)
reaches every one of its flip-flops, 1,024 in a block with 8 lanes of 128 bits, and on the
ECP5 that one net was the critical path of stage 4 (8.7-8.9 ns of routing). So the words are
cut into slices of at most :data:`SLICE_BITS` bits, and every slice has its own copy of the
control: words held, write pointer, read pointer. The copies always hold equal values (same
reset, same updates); they are counters, each fed back from itself, so synthesis keeps them
apart (registers that merely copy one value are merged into one by Yosys' ``opt_merge``) and
the placer can put each next to its slice. ``i.ready`` is the first copy's.

Latency: a word written in cycle ``t`` can be claimed from ``t + 1`` and is on ``data`` in the
cycle after its claim; one word per cycle in steady state. Order is kept. Clock domain
``sync``; ``rst`` empties the queue.
"""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["ClaimQueue"]

DEPTH = 4
#: Most bits of a word under one copy of the write and read control (module docstring).
SLICE_BITS = 128


class ClaimQueue(wiring.Component):
    """``DEPTH`` words of ``width`` bits; ``i`` is a stream, ``claim`` / ``claimable`` /
    ``data`` the claim-then-take interface (module docstring)."""

    def __init__(self, width):
        self._width = check_int("width", width, (1, 1 << 20))
        super().__init__({"i": In(stream.Signature(width)), "claim": In(1),
                          "claimable": Out(1), "data": Out(width)})

    @property
    def depth(self):
        return DEPTH

    @property
    def slices(self):
        """``(lo, hi)`` bit ranges of the word, one per copy of the control: the fewest
        slices of at most :data:`SLICE_BITS` bits, of equal width within one bit."""
        n = -(-self._width // SLICE_BITS)
        return [(g * self._width // n, (g + 1) * self._width // n) for g in range(n)]

    @property
    def latency(self):
        """Cycles from ``claim`` to the claimed word on ``data``: 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        unclaimed = Signal(range(DEPTH + 1), name="unclaimed")
        take = Signal(name="take")               # the word claimed last cycle leaves now
        m.d.comb += self.claimable.eq(unclaimed != 0)
        m.d.sync += [take.eq(self.claim),
                     unclaimed.eq(unclaimed + (self.i.valid & self.i.ready) - self.claim)]
        for g, (lo, hi) in enumerate(self.slices):
            words = Array(Signal(hi - lo, name=f"s{g}_word{k}", reset_less=True)
                          for k in range(DEPTH))
            wr = Signal(range(DEPTH), name=f"s{g}_wr_ptr")
            rd = Signal(range(DEPTH), name=f"s{g}_rd_ptr")
            held = Signal(range(DEPTH + 1), name=f"s{g}_held")
            push = Signal(name=f"s{g}_push")
            m.d.comb += [push.eq(self.i.valid & (held < DEPTH)),
                         self.data[lo:hi].eq(words[rd])]
            if g == 0:
                m.d.comb += self.i.ready.eq(held < DEPTH)
            m.d.sync += held.eq(held + push - take)
            with m.If(push):
                m.d.sync += [words[wr].eq(self.i.payload[lo:hi]), wr.eq(wr + 1)]
            with m.If(take):
                m.d.sync += rd.eq(rd + 1)
        return m
