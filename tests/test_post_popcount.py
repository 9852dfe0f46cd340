"""The post-popcount interface: both forms take their constants from a word packed by
``BlockParams.conv_words`` with the layout they declare, and compute the integer reference."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bincount.gateware.baseline_scale import BaselineScale
from bincount.gateware.block_params import block_params
from bincount.gateware.post_popcount import PostPopcount
from bincount.gateware.threshold_compare import ThresholdCompare
from engine_cases import reference_tensors, run_cycles, tiny_export


class _OneLane(wiring.Component):
    """A post-popcount block fed from one lane of a packed constant word."""

    def __init__(self, unit):
        self.unit = unit
        super().__init__({"count": In(len(unit.count)), "word": In(unit.constants_layout),
                          "in_valid": In(1), "y": Out(len(unit.y)), "out_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = u = self.unit
        m.d.comb += u.constants_from(self.word)
        m.d.comb += [u.count.eq(self.count), u.in_valid.eq(self.in_valid),
                     self.y.eq(u.y), self.out_valid.eq(u.out_valid)]
        return m


@pytest.mark.parametrize("form", ["binarized", "baseline"])
def test_packed_constants_give_the_reference(form):
    ex = tiny_export(8, 8, 1, 4, form, False, None, 1, seed=5)
    x = np.random.default_rng(6).integers(-700, 700, (8, 4, 4))
    p = block_params(ex, "stage1.conv1", 4, 8)
    ref = reference_tensors(ex, x)
    unit = (ThresholdCompare(p.n, 16) if form == "binarized"
            else BaselineScale(p.n, p.shift, 16, p.mul_bits, p.off_bits))
    assert isinstance(unit, PostPopcount)
    assert unit.constants_layout == p.conv_layout
    for name, field in unit.constants_layout:       # every field is a port of that shape
        assert getattr(unit, name).shape() == field.shape
    words = p.conv_words()
    lane_bits = unit.constants_layout.size
    dut = _OneLane(unit)
    inputs, want = [], []
    for c in range(8):
        word = (words[c // 4] >> ((c % 4) * lane_bits)) & ((1 << lane_bits) - 1)
        for y in range(4):
            for xx in range(4):
                inputs.append({"count": int(ref["count"][c, y, xx]), "word": word,
                               "in_valid": 1})
                want.append(int(ref["conv_out"][c, y, xx]))
    got = run_cycles(dut, inputs + [{"in_valid": 0}] * unit.latency, ["y", "out_valid"])
    for t, w in enumerate(want):
        out = got[t + unit.latency - 1]
        y = out["y"] - (1 << 16) if out["y"] >> 15 else out["y"]
        assert out["out_valid"] and y == w, (t, y, w)
    assert not got[len(want) + unit.latency - 1]["out_valid"]


def test_layouts_pack_like_the_ports():
    layout = ThresholdCompare.constants_layout_for(576, 16)
    assert [(n, f.offset, f.width) for n, f in layout] == [("threshold", 0, 10),
                                                           ("hi", 10, 16), ("lo", 26, 16)]
    layout = BaselineScale.constants_layout_for(18, 32)
    assert [(n, f.offset, f.width) for n, f in layout] == [("mul", 0, 18), ("offset", 18, 32)]
