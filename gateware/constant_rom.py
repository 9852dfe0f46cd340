"""Constant ROM: per-group constant words of a binary block, read through two extra registers.

Returns word ``addr`` of a read-only memory::

    data = init[addr]                 LATENCY = 3 cycles after addr

The memory's read register is followed by two more: the first can become a block RAM's output
register, the second sits in the fabric next to the logic it feeds (docs/engines.md, "Clock
speed on ECP5"). Bits that are the same in every word are wired as constants instead of being
stored: a register of a constant with another initial value would survive synthesis as one
shared flip-flop fanning out to every block.

``shape`` is the word's shape: a width, or an ``amaranth.lib.data`` layout (then ``data`` is a
view of it, and ``init`` holds the words as integers, bit 0 first, e.g. from
``layout.const(...).as_value().value``). ``style`` (``"auto"``, ``"block"``, ``"logic"``)
leaves the memory to the synthesis tool or asks for block RAM or logic through its
``ram_style`` attribute (a small ROM left to Yosys becomes LUTs on xc7: a stage-1 block's
three ROMs take about 320 LUT6 there, and 8 RAMB18 in block RAM). The read runs every cycle.
With ``enable``, the ROM has an ``en`` input and its read and both registers move only in
cycles with ``en`` high (a pipeline that stalls with its consumer: ``data`` is the word read
three enabled cycles before). Clock domain ``sync``.
"""

from amaranth.hdl import Const, Module, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from bincount.errors import BincountError

from ._common import check_choice, check_int, delay
from .banked_ram import RAM_STYLES

__all__ = ["ConstantROM"]


class ConstantROM(wiring.Component):
    """``data = init[addr]``, ``LATENCY`` cycles after ``addr`` (module docstring).

    Parameters
    ----------
    shape : int or ShapeCastable
        Width of a word (``1..2**20``), or a layout of it.
    init : list of int
        The words (at least one), each ``0 <= w < 2**width``.
    style : str
        ``"auto"`` (default), ``"block"`` or ``"logic"`` (the ``ram_style`` attribute).
    enable : bool
        Add the ``en`` input (default: the read runs every cycle).

    Members
    -------
    addr : ``In(ceil_log2(len(init)))``
        Word address (width 0 for a single word).
    data : ``Out(shape)``
        Word ``addr``, ``latency`` cycles later.
    """

    #: Cycles from ``addr`` to ``data``: the memory's read register and two more.
    LATENCY = 3

    def __init__(self, shape, init, style="auto", enable=False):
        self._style = check_choice("style", style, RAM_STYLES)
        width = Shape.cast(shape).width
        check_int("width", width, (1, 1 << 20))
        self._init = [int(w) for w in init]
        check_int("len(init)", len(self._init), (1, 1 << 24))
        if any(not 0 <= w < (1 << width) for w in self._init):
            raise BincountError(f"init words must be in 0..2**{width}-1")
        self._width = width
        self._enable = bool(enable)
        ports = {"addr": In(ceil_log2(len(self._init))), "data": Out(shape)}
        if self._enable:
            ports["en"] = In(1)
        super().__init__(ports)

    @property
    def latency(self):
        """Cycles from ``addr`` to ``data``: :attr:`LATENCY`."""
        return self.LATENCY

    @property
    def depth(self):
        return len(self._init)

    def elaborate(self, platform):
        m = Module()
        width = self._width
        ones, anys = (1 << width) - 1, 0
        for w in self._init:
            ones &= w
            anys |= w
        varying = ones ^ anys
        attrs = {"ram_style": self._style} if self._style != "auto" else None
        m.submodules.mem = mem = Memory(shape=width, depth=len(self._init), init=self._init,
                                        attrs=attrs)
        rd = mem.read_port(transparent_for=())
        m.d.comb += rd.addr.eq(self.addr)
        en = self.en if self._enable else None
        if en is not None:
            m.d.comb += rd.en.eq(en)
        word = delay(m, rd.data, self.LATENCY - 1, "word", en=en)
        m.d.comb += Value.cast(self.data).eq((word & Const(varying, width)) | Const(ones, width))
        return m
