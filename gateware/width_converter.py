"""Width converter: a stream of ``lanes_in`` channels per beat to one of ``lanes_out``.

Both sides carry the stage engines' format (:mod:`bincount.gateware.block_engine`): channel
``g*P + p`` of a pixel at bits ``[p*bits, (p+1)*bits)`` of beat ``g``, pixels in raster order.
Since a pixel's channels are consecutive beats in ascending order, converting is a split or a
gather of ``lane_bits`` lanes and the channel order stays as it is:

- ``lanes_in > lanes_out`` (``r = lanes_in / lanes_out``): each input beat leaves as ``r`` beats,
  lanes ``[j*lanes_out, (j+1)*lanes_out)`` in beat ``j``;
- ``lanes_in < lanes_out``: ``r = lanes_out / lanes_in`` input beats form one output beat, the
  first at the low bits.

Both ratios are powers of two (lanes are powers of two). Throughput: one output beat per cycle
(split) or one input beat per cycle (gather); latency 1 cycle (registered output). Order kept;
``rst`` empties it. Equal widths need no converter (:func:`convert` returns the stream as is).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bincount.errors import BincountError

from ._common import check_int

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """``lanes_in`` -> ``lanes_out`` lanes of ``lane_bits`` bits per beat (module docstring)."""

    @staticmethod
    def check(lanes_in, lanes_out, lane_bits=16):
        """Raise :class:`BincountError` (one line) unless the parameters make a converter."""
        for name, v in (("lanes_in", lanes_in), ("lanes_out", lanes_out)):
            check_int(name, v, (1, 4096))
            if v & (v - 1):
                raise BincountError(f"{name} must be a power of two, got {v}")
        if lanes_in == lanes_out:
            raise BincountError(f"lanes_in = lanes_out = {lanes_in}: no converter needed")
        check_int("lane_bits", lane_bits, (1, 1024))

    def __init__(self, lanes_in, lanes_out, lane_bits=16):
        self.check(lanes_in, lanes_out, lane_bits)
        self.lanes_in, self.lanes_out, self.lane_bits = lanes_in, lanes_out, lane_bits
        super().__init__({"i": In(stream.Signature(lanes_in * lane_bits)),
                          "o": Out(stream.Signature(lanes_out * lane_bits))})

    @property
    def latency(self):
        return 1

    def elaborate(self, platform):
        m = Module()
        wi, wo = self.lanes_in * self.lane_bits, self.lanes_out * self.lane_bits
        fire_i = self.i.valid & self.i.ready
        fire_o = self.o.valid & self.o.ready
        if self.lanes_in > self.lanes_out:
            r = self.lanes_in // self.lanes_out
            buf = Signal(wi, name="buf", reset_less=True)
            full = Signal(name="full")
            j = Signal(range(r), name="part")
            last = j == r - 1
            m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(buf.word_select(j, wo)),
                         self.i.ready.eq(~full | (self.o.ready & last))]
            with m.If(fire_o):
                m.d.sync += j.eq(j + 1)
                with m.If(last):
                    m.d.sync += [j.eq(0), full.eq(0)]
            with m.If(fire_i):
                m.d.sync += [buf.eq(self.i.payload), full.eq(1), j.eq(0)]
        else:
            r = self.lanes_out // self.lanes_in
            parts = Signal(wo - wi, name="parts", reset_less=True)
            j = Signal(range(r), name="part")
            out = Signal(wo, name="out", reset_less=True)
            full = Signal(name="full")
            last = j == r - 1
            m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(out),
                         self.i.ready.eq(~last | ~full | self.o.ready)]
            with m.If(fire_o):
                m.d.sync += full.eq(0)
            with m.If(fire_i):
                m.d.sync += j.eq(j + 1)
                with m.If(last):
                    m.d.sync += [j.eq(0), full.eq(1), out.eq(Cat(parts, self.i.payload))]
                with m.Else():
                    m.d.sync += parts.word_select(j, wi).eq(self.i.payload)
        return m
