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

Latency: 2 cycles from ``r_addr`` to ``r_data`` (3 with ``port_registers``, below); the memory
is read every cycle. The write port
(``w_addr``, ``w_data``, ``w_en``; absent with ``writable=False``) writes at the clock edge.
A read of the word being written in the same cycle is not to be relied on: it returns the old
word in simulation, but the banks carry the ``no_rw_check`` attribute, which tells synthesis
that the design never does it, so that no collision logic (a register of the write data and an
address comparator and multiplexer after the RAM's output) is added. Users of a writable
BankedRAM must never read the word written in the same cycle. ``init`` gives the initial words.

With ``port_registers``, the ports are registered inside, once per *column*: the memory is cut
into :attr:`BankedRAM.columns`, slices of the word one block RAM wide (the aspect ratio of
:func:`bank_blocks`, e.g. 8 columns of 16 bits for 128-bit words in 1,024 x 18 RAMs), and each
column has its own registers of the read address, the write address, the write data and the
write enables of its banks. A block RAM's address and enable pins are then driven by flip-flops
whose only loads are that column's RAMs, which the placer puts next to them; one register per
memory had to reach all of its RAMs across the chip (on the ECP5 the most frequent critical
path of the stage engines: a flip-flop, no logic, 6.0-6.5 ns of routing). The copies carry the
``keep`` attribute: Vivado keeps them as they are, and the project's Yosys scripts
(:data:`bincount.hw.synth.KEEP_REGISTERS`) turn it into a ``keep`` on the flip-flop cells, which
stops ``opt_merge`` from merging registers of the same value. Latency 3 from ``r_addr``; a write
lands one clock edge later (the edge after the registers take it).

``style`` (``"auto"``, ``"block"``, ``"logic"``) leaves the choice of block RAM or logic to the
synthesis tool, or asks for one through the banks' ``ram_style`` attribute (Yosys and Vivado
read it; a small deep-and-wide ROM such as a block's weights, 72 x 512 bits, is built in LUTs
by Yosys for xc7 unless asked for block RAM: 1,016 LUT, or 0 LUT and 15 RAMB18).
"""

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_choice, check_int, delay

__all__ = ["BankedRAM", "BRAM_MODES", "RAM_STYLES", "bank_blocks", "default_bank_depth",
           "side_by_side"]

#: Memory styles: the tool's choice, block RAM, logic (``ram_style`` attribute values).
RAM_STYLES = ("auto", "block", "logic")

#: ``(depth, width)`` aspect ratios of an 18-Kbit block RAM (ECP5 DP16KD, 7-series RAMB18E1).
BRAM_MODES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def bank_blocks(width, depth, bank_depth):
    """18-Kbit block RAMs of ``depth`` words of ``width`` bits in banks of ``bank_depth`` words
    (at most 16,384), each bank built side by side from RAMs at least as deep as the bank (no
    multiplexer inside a bank), in the cheapest such aspect ratio."""
    check_int("bank_depth", bank_depth, (1, BRAM_MODES[-1][0]))
    return sum(side_by_side(width, min(bank_depth, depth - start))
               for start in range(0, depth, bank_depth))


def side_by_side(width, depth):
    """18-Kbit block RAMs side by side that hold ``depth`` words of ``width`` bits with no
    multiplexer (each RAM at least ``depth`` deep), in the cheapest aspect ratio; ``None`` when
    no RAM is that deep."""
    return min((-(-width // mw) for md, mw in BRAM_MODES if md >= depth), default=None)


def default_bank_depth(width, depth):
    """The default bank depth of ``depth`` words of ``width`` bits (module docstring): of the
    :data:`BRAM_MODES` depths, the one with the fewest :func:`bank_blocks`, then the fewest banks
    (the deepest)."""
    return min((bank_blocks(width, depth, d), -d, d) for d, _ in BRAM_MODES)[2]


class BankedRAM(wiring.Component):
    """``depth`` words of ``width`` bits in banks of ``bank_depth`` words (default
    :func:`default_bank_depth` of ``width`` and ``depth``; module docstring); with
    ``port_registers``, the ports registered once per column of block RAMs."""

    def __init__(self, width, depth, init=(), bank_depth=None, writable=True, style="auto",
                 port_registers=False):
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
        self._port_registers = bool(port_registers)
        super().__init__(members)

    @property
    def banks(self):
        return -(-self._depth // self._bank_depth)

    @property
    def columns(self):
        """``(lo, hi)`` bit ranges of the word, one memory each: with ``port_registers`` (and a
        style other than ``"logic"``), as many columns as :func:`bank_blocks` counts block RAMs
        side by side in a bank, of equal width within one bit; else the whole word."""
        n = side_by_side(self._width, min(self._bank_depth, self._depth))
        if not self._port_registers or self._style == "logic" or n is None:
            return [(0, self._width)]
        return [(c * self._width // n, (c + 1) * self._width // n) for c in range(n)]

    @property
    def latency(self):
        """Cycles from ``r_addr`` to ``r_data``: 2, plus 1 with ``port_registers``."""
        return 2 + self._port_registers

    def _port(self, m, value, name, reset_less=True):
        """``value`` as seen by one column: itself, or its own register (kept: module
        docstring)."""
        if not self._port_registers:
            return value
        reg = Signal.like(value, name=name, reset_less=reset_less, attrs={"keep": 1})
        m.d.sync += reg.eq(value)
        return reg

    def elaborate(self, platform):
        m = Module()
        n, bd = self.banks, min(self._bank_depth, self._depth)
        lb = ceil_log2(max(bd, 2))
        low = (lambda a: a[:lb]) if n > 1 else (lambda a: a)
        cols = self.columns
        ports = []
        for c, (lo, hi) in enumerate(cols):
            tag = f"col{c}_" if len(cols) > 1 else ""
            port = {"r_addr": self._port(m, low(self.r_addr), f"{tag}r_addr_r")}
            if self._writable:
                port["w_addr"] = self._port(m, low(self.w_addr), f"{tag}w_addr_r")
                port["w_data"] = self._port(m, self.w_data[lo:hi], f"{tag}w_data_r")
                port["w_en"] = [self._port(m, self.w_en & ((self.w_addr[lb:] == b) if n > 1
                                                           else 1),
                                           f"{tag}w_en{b}_r", reset_less=False)
                                for b in range(n)]
            ports.append(port)
        regs = []
        for b in range(n):
            words = self._init[b * bd:(b + 1) * bd]
            size = min(bd, self._depth - b * bd)
            attrs = {"no_rw_check": 1} if self._writable else {}
            if self._style != "auto":
                attrs["ram_style"] = self._style
            parts = []
            for c, ((lo, hi), port) in enumerate(zip(cols, ports)):
                mask = (1 << (hi - lo)) - 1
                mem = Memory(shape=hi - lo, depth=size, init=[(w >> lo) & mask for w in words],
                             attrs=attrs or None)
                m.submodules[f"bank{b}" if len(cols) == 1 else f"bank{b}_col{c}"] = mem
                rd = mem.read_port(transparent_for=())
                m.d.comb += rd.addr.eq(port["r_addr"])
                if self._writable:
                    wr = mem.write_port()
                    m.d.comb += [wr.addr.eq(port["w_addr"]), wr.data.eq(port["w_data"]),
                                 wr.en.eq(port["w_en"][b])]
                parts.append(rd.data)
            reg = Signal(self._width, name=f"bank{b}_data", reset_less=True)
            m.d.sync += reg.eq(Cat(*parts))
            regs.append(reg)
        if n == 1:
            m.d.comb += self.r_data.eq(regs[0])
            return m
        # the bank index meets the banks' registered data: the latency less the data register
        bank = delay(m, self.r_addr[lb:], self.latency, "bank")
        m.d.comb += self.r_data.eq(Array(regs)[bank])
        return m
