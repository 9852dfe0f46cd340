# amaranth: UnusedElaboratable=no
"""RPReLU lanes: the activation at the end of a ReActNet block for one channel group, with
its per-group constant ROM.

For lane ``p`` of channel group ``g`` (channel ``c = g*P + p``), the formula of
:class:`~bincount.gateware.rprelu_unit.RPReLUUnit`::

    y[p] = sat(PReLU_c(sat(s[p] + b0_c)) + b1_c)        slope 2**e (shift) or trained (multiply)

The constants come from word ``g`` of a :class:`~bincount.gateware.constant_rom.ConstantROM`
holding :meth:`~bincount.gateware.block_params.BlockParams.rprelu_words`, unpacked with
``ArrayLayout(RPReLUUnit.constants_layout, P)`` (the layout they are packed with).

Timing: ``group`` is presented :attr:`RPReLULanes.constants_lead` cycles before the ``s`` it
belongs to (the ROM's latency); ``y`` follows ``s`` by :attr:`RPReLULanes.latency` (the
unit's, 4). The pow2 shifter is built for the layer's own exponents and slope signs
(:attr:`BlockParams.rprelu_exponents`, :attr:`~BlockParams.rprelu_negative_slopes`). Bit order: lane ``p`` at bits ``[p*res_bits, (p+1)*res_bits)`` of ``s`` and ``y``.
Clock domain ``sync``.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with this component, and an unused one is reported on
its own.)
"""

from amaranth.hdl import Cat, Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from bincount.errors import BincountError

from .block_params import BlockParams
from .constant_rom import ConstantROM
from .rprelu_unit import RPReLUUnit

__all__ = ["RPReLULanes"]


class RPReLULanes(wiring.Component):
    """RPReLU of the ``P`` lanes of a channel group of ``params`` (module docstring).

    Members
    -------
    group : ``In(range(Cout/P))``
        Channel group, ``constants_lead`` cycles ahead of ``s``.
    s : ``In(ArrayLayout(signed(res_bits), P))``; in_valid : ``In(1)``
    y : ``Out(P * res_bits)``; out_valid : ``Out(1)``
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("RPReLULanes takes a BlockParams")
        if params.rprelu is None:
            raise BincountError(f"layer {params.name} has no RPReLU")
        self.params = p = params
        self._unit = RPReLUUnit(p.lanes, p.rprelu_form, p.res_bits, p.slope_bits, p.slope_frac,
                                exponents=p.rprelu_exponents,
                                negative_slopes=p.rprelu_negative_slopes)
        layout = self._unit.constants_layout
        assert layout == p.rprelu_layout             # the layout the words are packed with
        self._rom = ConstantROM(data.ArrayLayout(layout, p.lanes), p.rprelu_words(),
                                style=p.constant_ram)
        super().__init__({
            "group": In(ceil_log2(p.out_groups)),
            "s": In(data.ArrayLayout(signed(p.res_bits), p.lanes)),
            "in_valid": In(1),
            "y": Out(p.beat_bits),
            "out_valid": Out(1),
        })

    @property
    def latency(self):
        """Cycles from ``s`` to ``y``: the :class:`RPReLUUnit`'s latency."""
        return self._unit.latency

    @property
    def constants_lead(self):
        """Cycles ``group`` comes before its ``s``: the constant ROM's latency."""
        return self._rom.latency

    def elaborate(self, platform):
        m = Module()
        P = self.params.lanes
        m.submodules.rprelu_constants = rom = self._rom
        m.submodules.rprelu = u = self._unit
        m.d.comb += rom.addr.eq(self.group)
        word = rom.data
        m.d.comb += [u.s.eq(self.s), u.b0.eq(Cat(*(word[q].b0 for q in range(P)))),
                     u.b1.eq(Cat(*(word[q].b1 for q in range(P)))), u.in_valid.eq(self.in_valid),
                     self.y.eq(u.y), self.out_valid.eq(u.out_valid)]
        if u.form == "shift":
            m.d.comb += [u.exp.eq(Cat(*(word[q].exp for q in range(P)))),
                         u.neg.eq(Cat(*(word[q].neg for q in range(P))))]
        else:
            m.d.comb += u.slope.eq(Cat(*(word[q].slope for q in range(P))))
        return m
