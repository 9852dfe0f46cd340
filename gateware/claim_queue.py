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
    def latency(self):
        """Cycles from ``claim`` to the claimed word on ``data``: 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        words = Array(Signal(self._width, name=f"word{k}", reset_less=True)
                      for k in range(DEPTH))
        wr = Signal(range(DEPTH), name="wr_ptr")
        rd = Signal(range(DEPTH), name="rd_ptr")
        held = Signal(range(DEPTH + 1), name="held")
        unclaimed = Signal(range(DEPTH + 1), name="unclaimed")
        take = Signal(name="take")               # the word claimed last cycle leaves now
        push = Signal(name="push")
        m.d.comb += [self.i.ready.eq(held < DEPTH), push.eq(self.i.valid & self.i.ready),
                     self.claimable.eq(unclaimed != 0), self.data.eq(words[rd])]
        m.d.sync += [take.eq(self.claim),
                     held.eq(held + push - take),
                     unclaimed.eq(unclaimed + push - self.claim)]
        with m.If(push):
            m.d.sync += [words[wr].eq(self.i.payload), wr.eq(wr + 1)]
        with m.If(take):
            m.d.sync += rd.eq(rd + 1)
        return m
