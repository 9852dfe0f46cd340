"""UART receiver and transmitter in the Amaranth simulator: bit timing, back-to-back bytes,
framing errors, glitches, overrun, and the documented latencies."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from bincount.errors import BincountError
from bincount.gateware.uart_rx import UartRx
from bincount.gateware.uart_tx import UartTx


def bits_of(byte, stop=1):
    """Line levels of one 8N1 frame: start, 8 data bits LSB first, stop."""
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


def run_rx(divisor, levels, cycles_per_level=None, ready=True, extra=40):
    """Drive ``levels`` (one per bit time) into a UartRx; return ``[(cycle, byte, ferr)]``,
    the overrun cycles and the cycles where the pin first went low for each start bit."""
    dut = UartRx(divisor)
    per = cycles_per_level or divisor
    got, overruns = [], []

    async def tb(ctx):
        ctx.set(dut.rx, 1)
        ctx.set(dut.o.ready, ready)
        await ctx.tick().repeat(5)
        cycle = 0
        wave = [lv for lv in levels for _ in range(per)] + [1] * (extra * divisor)
        for lv in wave:
            ctx.set(dut.rx, lv)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append((cycle, ctx.get(dut.o.payload), ctx.get(dut.framing_error)))
            if ctx.get(dut.overrun):
                overruns.append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    run_rx.latency = dut.latency
    return got, overruns


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_rx_back_to_back_bytes(divisor):
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    levels = [1, 1] + [b for x in data for b in bits_of(x)]
    got, overruns = run_rx(divisor, levels)
    assert [g[1] for g in got] == data
    assert not any(g[2] for g in got) and not overruns
    # latency: the pin goes low at cycle (2 + 10 k) * divisor for byte k (set before the edge
    # of that cycle); o.valid is seen `latency` cycles later
    for k, (cycle, _, _) in enumerate(got):
        assert cycle == (2 + 10 * k) * divisor + run_rx.latency


def test_rx_framing_error_then_recovers():
    d = 8
    # a byte whose stop bit is low, the line held low (break) for a while, then a good byte
    levels = [1] + bits_of(0x5B, stop=0) + [0] * 12 + [1, 1] + bits_of(0xC3)
    got, _ = run_rx(d, levels)
    assert [(g[1], g[2]) for g in got] == [(0x5B, 1), (0xC3, 0)]


def test_rx_ignores_glitch_and_tolerates_rate_mismatch():
    d = 16
    # a low pulse shorter than half a bit is not a start bit
    glitch = [1] * 3 * d + [0] * (d // 2 - 3) + [1] * 3 * d
    wave = glitch + [lv for x in (0x96, 0x69) for lv in bits_of(x) for _ in range(d)]
    got, _ = run_rx(d, wave, cycles_per_level=1)
    assert [g[1] for g in got] == [0x96, 0x69]
    # the sender 3% slow and 3% fast (33 and 31 cycles per bit at divisor 32): still read right
    d = 32
    for per in (d + 1, d - 1):
        wave = [lv for x in (0xE7, 0x18, 0xAA) for lv in bits_of(x) + [1] for _ in range(per)]
        got, _ = run_rx(d, wave, cycles_per_level=1)
        assert [g[1] for g in got] == [0xE7, 0x18, 0xAA], per


def test_rx_overrun_drops_the_new_byte():
    got, overruns = run_rx(4, [1] + bits_of(0x11) + bits_of(0x22) + bits_of(0x33),
                           ready=False)
    assert got == [] and len(overruns) == 2


def test_tx_bit_timing_back_to_back():
    d = 6
    data = [0x00, 0xFF, 0x5A, 0x81]
    dut = UartTx(d)
    line, accepted = [], []

    async def tb(ctx):
        await ctx.tick().repeat(3)
        k = 0
        for cycle in range(10 * d * len(data) + 4 * d):
            ctx.set(dut.i.valid, k < len(data))
            if k < len(data):
                ctx.set(dut.i.payload, data[k])
            line.append(ctx.get(dut.tx))
            if k < len(data) and ctx.get(dut.i.ready):
                accepted.append(cycle)
                k += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    start = accepted[0] + dut.latency
    assert all(v == 1 for v in line[:start])
    expect = [lv for x in data for lv in bits_of(x) for _ in range(d)]
    assert line[start:start + len(expect)] == expect
    assert accepted == [accepted[0] + 10 * d * k for k in range(len(data))]
    assert all(v == 1 for v in line[start + len(expect):])


def test_tx_into_rx_loopback():
    d = 4
    data = list(range(0, 256, 7))
    m = Module()
    m.submodules.tx = tx = UartTx(d)
    m.submodules.rx = rx = UartRx(d)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def tb(ctx):
        ctx.set(rx.o.ready, 1)
        k = 0
        for _ in range(10 * d * (len(data) + 2)):
            ctx.set(tx.i.valid, k < len(data))
            if k < len(data):
                ctx.set(tx.i.payload, data[k])
                if ctx.get(tx.i.ready):
                    k += 1
            if ctx.get(rx.o.valid):
                got.append((ctx.get(rx.o.payload), ctx.get(rx.framing_error)))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == [(x, 0) for x in data]


@pytest.mark.parametrize("bad", [3, 0, 65536, "8", True])
def test_divisor_range(bad):
    for cls in (UartRx, UartTx):
        with pytest.raises(BincountError, match="UART divisor must"):
            cls(bad)
