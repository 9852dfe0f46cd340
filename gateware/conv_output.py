# amaranth: UnusedElaboratable=no
"""Conv output: the ``P`` post-popcount blocks of a channel group with their constant ROM.

For lane ``p`` of channel group ``g`` (output channel ``c = g*P + p``)::

    y[p] = hi_c if counts[p] >= T_c else lo_c                 binarized counting
         | sat((M_c * (2*counts[p] - N) + O_c) >> S)          baseline

one :class:`~bincount.gateware.post_popcount.PostPopcount` per lane
(:class:`~bincount.gateware.threshold_compare.ThresholdCompare` or
:class:`~bincount.gateware.baseline_scale.BaselineScale`, by the layer's form), fed from word
``g`` of a :class:`~bincount.gateware.constant_rom.ConstantROM` holding
:meth:`~bincount.gateware.block_params.BlockParams.conv_words` (lane ``p`` is field ``p`` of
``ArrayLayout(unit.constants_layout, P)``, the layout the words are packed with).

Timing: ``group`` is presented :attr:`ConvOutput.constants_lead` cycles before the counts it
belongs to (the ROM's latency); ``y`` follows ``counts`` by :attr:`ConvOutput.latency` (the
post-popcount block's). Bit order: lane ``p`` at bits ``[p*w, (p+1)*w)`` of ``counts`` and
``y``. Clock domain ``sync``.

(The first line turns off Amaranth's "created but never used" warning for the parts made in
the constructor: they are elaborated with this component, and an unused one is reported on
its own.)
"""

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .baseline_scale import BaselineScale
from .block_params import BlockParams
from .constant_rom import ConstantROM
from .threshold_compare import ThresholdCompare

__all__ = ["ConvOutput"]


def _post_popcount(p):
    """The post-popcount block of ``p``'s form for one lane."""
    if p.form == "binarized":
        return ThresholdCompare(p.n, p.res_bits)
    return BaselineScale(p.n, p.shift, p.res_bits, p.mul_bits, p.off_bits)


class ConvOutput(wiring.Component):
    """The conv outputs of one channel group of ``params`` (module docstring).

    Members
    -------
    group : ``In(range(Cout/P))``
        Channel group, ``constants_lead`` cycles ahead of ``counts``.
    counts : ``In(ArrayLayout(unsigned(ceil_log2(N+1)), P))``; in_valid : ``In(1)``
    y : ``Out(ArrayLayout(signed(res_bits), P))``; out_valid : ``Out(1)``
    """

    def __init__(self, params):
        if not isinstance(params, BlockParams):
            raise TypeError("ConvOutput takes a BlockParams")
        self.params = p = params
        self._units = [_post_popcount(p) for _ in range(p.lanes)]
        layout = self._units[0].constants_layout
        assert layout == p.conv_layout               # the layout the words are packed with
        self._rom = ConstantROM(data.ArrayLayout(layout, p.lanes), p.conv_words(),
                                style=p.constant_ram)
        super().__init__({
            "group": In(ceil_log2(p.out_groups)),
            "counts": In(data.ArrayLayout(unsigned(ceil_log2(p.n + 1)), p.lanes)),
            "in_valid": In(1),
            "y": Out(data.ArrayLayout(signed(p.res_bits), p.lanes)),
            "out_valid": Out(1),
        })

    @property
    def latency(self):
        """Cycles from ``counts`` to ``y``: the post-popcount block's latency."""
        return self._units[0].latency

    @property
    def constants_lead(self):
        """Cycles ``group`` comes before its ``counts``: the constant ROM's latency."""
        return self._rom.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.conv_constants = rom = self._rom
        m.d.comb += rom.addr.eq(self.group)
        for lane, u in enumerate(self._units):
            m.submodules[f"conv{lane}"] = u
            m.d.comb += u.constants_from(rom.data[lane])
            m.d.comb += [u.count.eq(self.counts[lane]), u.in_valid.eq(self.in_valid),
                         self.y[lane].eq(u.y)]
        m.d.comb += self.out_valid.eq(self._units[0].out_valid)
        return m
