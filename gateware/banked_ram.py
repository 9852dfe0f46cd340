"""Banked RAM: a memory split into banks of at most ``bank_depth`` words, every bank's output
registered before the bank multiplexer.

A memory deeper than one block RAM is built by synthesis tools as several RAMs and a
multiplexer on their outputs; that multiplexer then sits between the RAMs' slow clock-to-output
and the next register, and bounds Fmax. Here every bank is its own memory whose data goes
straight into a register (which the tools can move into the RAM's output register), and the
bank is selected after those registers::

    cycle 0: r_addr           -> every bank reads word r_addr mod bank_depth
    cycle 1: bank data        -> registered, bank index registered
    cycle 2: r_data = bank_reg[bank index]     (combinational after registers)

Bank depth (default, :func:`default_bank_depth`): the depth of an 18-Kbit block RAM aspect ratio
(:data:`BRAM_MODES`: 512 x 36, 1,024 x 18, 2,048 x 9, 4,096 x 4, 8,192 x 2, 16,384 x 1) such
that each bank is built from block RAMs of exactly its depth side by side (no multiplexer
inside a bank), with the fewest block RAMs in all, and of those the fewest banks. A deeper bank
of wide words needs no more RAMs: 1,024 words of 512 bits are 29 RAMs of 1,024 x 18 in one bank
against 2 x 15 of 512 x 36 in two banks and their multiplexer; 4,096 such words are 2 banks of
2,048 (114 RAMs) against 8 banks of 512 (120). A bank of narrow words fills its block RAMs: in
banks of 512 words, a 4-bit memory would use an eighth of each block, and Yosys builds such
small banks in logic instead (a 4 x 18,432-bit ROM of random words, ``BankedRAM(4, 18432,
init, writable=False, bank_depth=...)`` alone through ``synth_ecp5``: 5,946 LUT4 and no block
RAM in 512-word banks, 5 DP16KD and 40 LUT4 in 4,096-word banks, and in the default's two
banks of 16,384, 5 DP16KD and 4 LUT4).

Latency: 2 cycles from ``r_addr`` to ``r_data``; the memory is read every cycle. The write port
(``w_addr``, ``w_data``, ``w_en``; absent with ``writable=False``) writes at the clock edge.
A read of the word being written in the same cycle is not to be relied on: it returns the old
word in simulation, but the banks carry the ``no_rw_check`` attribute, which tells synthesis
that the design never does it, so that no collision logic (a register of the write data and an
address comparator and multiplexer after the RAM's output) is added. Users of a writable
BankedRAM must never read the word written in the same cycle. ``init`` gives the initial words.

``style`` (``"auto"``, ``"block"``, ``"logic"``) leaves the choice of block RAM or logic to the
synthesis tool, or asks for one through the banks' ``ram_style`` attribute (Yosys and Vivado
read it; a small deep-and-wide ROM such as a block's weights, 72 x 512 bits, is built in LUTs
by Yosys for xc7 unless asked for block RAM: 1,016 LUT, or 0 LUT and 15 RAMB18).
"""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_choice, check_int

__all__ = ["BankedRAM", "BANK_DEPTH", "BRAM_MODES", "RAM_STYLES", "bank_blocks",
           "default_bank_depth", "block_depth"]

#: Memory styles: the tool's choice, block RAM, logic (``ram_style`` attribute values).
RAM_STYLES = ("auto", "block", "logic")

#: Words per bank of words wider than 36 bits: the depth of one block RAM in its widest mode
#: (ECP5 DP16KD 512 x 36, 7-series RAMB36 512 x 72).
BANK_DEPTH = 512
#: ``(depth, width)`` aspect ratios of an 18-Kbit block RAM (ECP5 DP16KD, 7-series RAMB18E1).
BRAM_MODES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def block_depth(width):
    """Words of ``width`` bits in one 18-Kbit block RAM: the depth of the narrowest
    :data:`BRAM_MODES` entry at least ``width`` bits wide; :data:`BANK_DEPTH` beyond 36 bits."""
    return max((d for d, w in BRAM_MODES if w >= width), default=BANK_DEPTH)


def bank_blocks(width, depth, bank_depth):
    """18-Kbit block RAMs of ``depth`` words of ``width`` bits in banks of ``bank_depth`` words
    (at most 16,384), each bank built side by side from RAMs at least as deep as the bank (no
    multiplexer inside a bank), in the cheapest such aspect ratio."""
    check_int("bank_depth", bank_depth, (1, BRAM_MODES[-1][0]))
    total = 0
    for start in range(0, depth, bank_depth):
        d = min(bank_depth, depth - start)
        total += min(-(-width // mw) for md, mw in BRAM_MODES if md >= d)
    return total


def default_bank_depth(width, depth):
    """The default bank depth of ``depth`` words of ``width`` bits (module docstring): of the
    :data:`BRAM_MODES` depths, the one with the fewest :func:`bank_blocks`, then the fewest banks
    (the deepest)."""
    return min((bank_blocks(width, depth, d), -d, d) for d, _ in BRAM_MODES)[2]


class BankedRAM(wiring.Component):
    """``depth`` words of ``width`` bits in banks of ``bank_depth`` words (default
    :func:`default_bank_depth` of ``width`` and ``depth``; module docstring)."""

    def __init__(self, width, depth, init=(), bank_depth=None, writable=True, style="auto"):
        self._width = check_int("width", width, (1, 1 << 20))
        self._depth = check_int("depth", depth, (1, 1 << 24))
        if bank_depth is None:
            bank_depth = default_bank_depth(self._width, self._depth)
        self._bank_depth = check_int("bank_depth", bank_depth, (1, 1 << 24))
        self._init = [int(v) for v in init]
        if len(self._init) > depth:
            check_int("len(init)", len(self._init), (0, depth))
        ab = ceil_log2(max(depth, 2))
        members = {"r_addr": In(ab), "r_data": Out(width)}
        if writable:
            members.update({"w_addr": In(ab), "w_data": In(width), "w_en": In(1)})
        self._writable = writable
        self._style = check_choice("style", style, RAM_STYLES)
        super().__init__(members)

    @property
    def banks(self):
        return -(-self._depth // self._bank_depth)

    @property
    def latency(self):
        return 2

    def elaborate(self, platform):
        m = Module()
        n, bd = self.banks, min(self._bank_depth, self._depth)
        lb = ceil_log2(max(bd, 2))
        regs = []
        for b in range(n):
            words = self._init[b * bd:(b + 1) * bd]
            size = min(bd, self._depth - b * bd)
            attrs = {"no_rw_check": 1} if self._writable else {}
            if self._style != "auto":
                attrs["ram_style"] = self._style
            mem = Memory(shape=self._width, depth=size, init=words, attrs=attrs or None)
            m.submodules[f"bank{b}"] = mem
            rd = mem.read_port(transparent_for=())
            m.d.comb += rd.addr.eq(self.r_addr[:lb] if n > 1 else self.r_addr)
            if self._writable:
                wr = mem.write_port()
                sel = (self.w_addr[lb:] == b) if n > 1 else 1
                m.d.comb += [wr.addr.eq(self.w_addr[:lb] if n > 1 else self.w_addr),
                             wr.data.eq(self.w_data), wr.en.eq(self.w_en & sel)]
            reg = Signal(self._width, name=f"bank{b}_data", reset_less=True)
            m.d.sync += reg.eq(rd.data)
            regs.append(reg)
        if n == 1:
            m.d.comb += self.r_data.eq(regs[0])
            return m
        bank = Signal(range(n), name="bank_d1", reset_less=True)
        bank2 = Signal(range(n), name="bank_d2", reset_less=True)
        m.d.sync += [bank.eq(self.r_addr[lb:]), bank2.eq(bank)]
        m.d.comb += self.r_data.eq(Array(regs)[bank2])
        return m
