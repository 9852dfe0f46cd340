"""ConstantROM in the Amaranth simulator: word ``addr`` after ``latency`` cycles, constant bits
wired, bad words refused."""

import random

import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from bincount.errors import BincountError
from bincount.gateware.constant_rom import ConstantROM
from engine_cases import run_cycles


@pytest.mark.parametrize("depth", [1, 3, 8])
def test_words_after_latency(depth):
    rng = random.Random(depth)
    # bit 0 always set, bit 1 always clear: wired as constants, still read back
    words = [(rng.getrandbits(20) << 2) | 1 for _ in range(depth)]
    dut = ConstantROM(22, words)
    assert dut.latency == ConstantROM.LATENCY == 3
    addrs = [rng.randrange(depth) for _ in range(40)]
    got = run_cycles(dut, [{"addr": a} for a in addrs], ["data"], extra=dut.latency)
    for t, a in enumerate(addrs):
        assert got[t + dut.latency - 1]["data"] == words[a], (t, a)


def test_layout_view():
    layout = data.ArrayLayout(data.StructLayout({"a": signed(4), "b": 2}), 2)
    words = [layout.const([{"a": -3, "b": 1}, {"a": 5, "b": 2}]).as_value().value]
    dut = ConstantROM(layout, words)
    assert dut.data.shape() == layout
    got = run_cycles(dut, [{"addr": 0}] * 4, ["data"])
    assert got[-1]["data"] == words[0]


def test_bad_words():
    with pytest.raises(BincountError, match="init words"):
        ConstantROM(4, [16])
    with pytest.raises(BincountError, match="len"):
        ConstantROM(4, [])


@pytest.mark.parametrize("style", ["block", "logic"])
def test_style_asks_for_block_ram_or_logic(style):
    """``style`` puts the ``ram_style`` attribute on the memory; ``auto`` puts none; the words
    read back the same."""
    from amaranth.back import verilog

    words = [3, 9, 27, 81]
    assert verilog.convert(ConstantROM(8, words, style=style), name="r",
                           emit_src=False).count(f'ram_style = "{style}"') == 1
    assert "ram_style" not in verilog.convert(ConstantROM(8, words), name="r", emit_src=False)
    got = run_cycles(ConstantROM(8, words, style=style), [{"addr": a} for a in (2, 0)], ["data"],
                     extra=3)
    assert [got[2]["data"], got[3]["data"]] == [27, 3]
    with pytest.raises(BincountError, match="style"):
        ConstantROM(8, words, style="bram")


def test_enable_moves_the_read_and_both_registers_together():
    """With ``enable``, ``data`` is the word read three enabled cycles before: a pipeline that
    stalls with ``en`` low."""
    words = [10, 20, 30, 40, 50]
    rng = random.Random(3)
    ens = [1, 1, 1] + [rng.randrange(2) for _ in range(40)]
    addrs = [rng.randrange(len(words)) for _ in ens]
    dut = ConstantROM(8, words, enable=True)
    got = run_cycles(dut, [{"addr": a, "en": e} for a, e in zip(addrs, ens)], ["data"])
    read = []                                     # addresses read on enabled cycles
    for t, (a, e) in enumerate(zip(addrs, ens)):
        if e:
            read.append(a)
        if len(read) >= 3:
            assert got[t]["data"] == words[read[-3]], t
