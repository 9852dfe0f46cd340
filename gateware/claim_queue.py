"""Claim queue: a small stream queue whose words are claimed in one cycle and taken in the next,
so that the consumer's decision never drives the queue's wide registers directly.

A stream consumer that decides each cycle whether to take a word (a fold issues only with its
weight word) would, with a plain stream register, feed that decision into the enables of every
payload flip-flop of the register: hundreds of loads on a path that already holds the decision
logic. Here the decision only claims a word, against a registered count of unclaimed words,
and the word is taken one cycle later from the queue, whose read pointers are the only thing
the (now registered) claim drives::

    i.ready   = held < DEPTH                      (held: words in the queue, a register)
    claimable = unclaimed != 0                    (unclaimed: a register; the consumer may
                                                   assert ``claim`` only when it is high)
    cycle t   : claim            -> unclaimed - 1
    cycle t+1 : data = queue[rd] ->  rd + 1, held - 1       (``data``: the LUT RAM read
                                                            without a clock at ``rd``)

The write side has the same problem: a word register's enable (``push`` and the write pointer)
reaches every one of its flip-flops, 1,024 in a block with 8 lanes of 128 bits; on the ECP5
that net was the critical path of stage 4 (8.7-8.9 ns of routing), and still 5.9 ns with one
enable per 128 bits, whose flip-flops the placer spreads towards the lanes. So the words live
in LUT RAM (distributed RAM: ``DEPTH`` words, written at the clock edge, read without a clock),
cut into slices of at most :data:`SLICE_BITS` bits, and the write is registered first: every
slice has its own registers of the write data, the write enable and the write address, and its
own read pointer. No enable reaches more than one slice's few RAM cells, and none drives
flip-flop enables. The copies of the enable and the addresses hold equal values and carry the
``keep`` attribute, which the project's Yosys scripts honour (:class:`BankedRAM` explains it)::

    cycle t   : push (i.valid & i.ready) -> staged: data, enable, address;  unclaimed + 1
    cycle t+1 : the staged word is written at the edge; it can be claimed in this cycle
    cycle t+2 : if claimed in t+1, data = slice RAM[rd] (read without a clock)

Latency: a word written in cycle ``t`` can be claimed from ``t + 1`` and is on ``data`` in the
cycle after its claim; one word per cycle in steady state. Order is kept. Clock domain
``sync``; ``rst`` empties the queue.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["ClaimQueue"]

DEPTH = 4
#: Most bits of a word in one slice of LUT RAM with its own control (module docstring).
SLICE_BITS = 32


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
        wr = Signal(range(DEPTH), name="wr_ptr")
        held = Signal(range(DEPTH + 1), name="held")
        unclaimed = Signal(range(DEPTH + 1), name="unclaimed")
        take = Signal(name="take")               # the word claimed last cycle leaves now
        push = Signal(name="push")
        m.d.comb += [self.i.ready.eq(held < DEPTH), push.eq(self.i.valid & self.i.ready),
                     self.claimable.eq(unclaimed != 0)]
        m.d.sync += [take.eq(self.claim),
                     held.eq(held + push - take),
                     unclaimed.eq(unclaimed + push - self.claim)]
        with m.If(push):
            m.d.sync += wr.eq(wr + 1)
        for g, (lo, hi) in enumerate(self.slices):
            # the staged write: copies of the enable and address, one per slice (kept)
            w_en = Signal(name=f"s{g}_w_en", attrs={"keep": 1})
            w_addr = Signal(range(DEPTH), name=f"s{g}_w_addr", reset_less=True,
                            attrs={"keep": 1})
            w_data = Signal(hi - lo, name=f"s{g}_w_data", reset_less=True)
            rd = Signal(range(DEPTH), name=f"s{g}_rd_ptr")
            m.d.sync += [w_en.eq(push), w_addr.eq(wr), w_data.eq(self.i.payload[lo:hi])]
            with m.If(take):
                m.d.sync += rd.eq(rd + 1)
            m.submodules[f"s{g}_ram"] = mem = Memory(shape=hi - lo, depth=DEPTH, init=[])
            wp = mem.write_port()
            rp = mem.read_port(domain="comb")
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en),
                         rp.addr.eq(rd), self.data[lo:hi].eq(rp.data)]
        return m
