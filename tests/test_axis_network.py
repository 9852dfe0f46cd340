"""AXI4-Stream wrapper framing in the Amaranth simulator: byte order, one result per frame,
short frames padded with zeros, long frames cut and the rest dropped, the result word layout,
random tvalid gaps and tready stalls.

The network inside is a small checksum engine defined here (each image of ``IMAGE_BYTES``
bytes gives ``prediction = byte 0 mod classes`` and ``logit k = sum of bytes at positions
p with p mod classes == k, minus 300``), so that every byte's position and value reaches the
result; the real network behind the same wrapper is checked against the integer reference
on Verilator (``sim/test_axis_network.py``).
"""

import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bincount.gateware.axis_network import AxisNetwork, decode_result

CLASSES = 10
IMAGE_BYTES = 24
LAYOUT = data.StructLayout({"prediction": 4, "logits": data.ArrayLayout(signed(12), CLASSES)})


class ChecksumCore(wiring.Component):
    """Per image of ``IMAGE_BYTES`` bytes: one result beat (module docstring); 1 byte per
    cycle in, the result held until taken."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(LAYOUT))})

    def elaborate(self, platform):
        m = Module()
        pos = Signal(range(IMAGE_BYTES))
        acc = [Signal(signed(12), init=-300, name=f"acc{k}") for k in range(CLASSES)]
        pred = Signal(4)
        full = Signal()
        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full),
                     self.o.payload.prediction.eq(pred)]
        for k in range(CLASSES):
            m.d.comb += self.o.payload.logits[k].eq(acc[k])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
            m.d.sync += [a.eq(-300) for a in acc]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += pos.eq(pos + 1)
            with m.If(pos == 0):
                m.d.sync += pred.eq(self.i.payload % CLASSES)
            for k in range(CLASSES):
                with m.If(pos % CLASSES == k):
                    m.d.sync += acc[k].eq(acc[k] + self.i.payload)
            with m.If(pos == IMAGE_BYTES - 1):
                m.d.sync += [pos.eq(0), full.eq(1)]
        return m


def expected(image):
    logits = [sum(image[p] for p in range(IMAGE_BYTES) if p % CLASSES == k) - 300
              for k in range(CLASSES)]
    return image[0] % CLASSES, logits


def run_frames(frames, seed=0, gap=0.3, stall=0.3, max_cycles=20000):
    """Send ``frames`` (lists of 32-bit words; tlast on each frame's last word) and collect the
    result words (grouped by tlast)."""
    dut = AxisNetwork(ChecksumCore(), LAYOUT, image_bytes=IMAGE_BYTES)
    rng = random.Random(seed)
    beats = [(w, int(j == len(f) - 1)) for f in frames for j, w in enumerate(f)]
    results, current = [], []

    async def tb(ctx):
        k = 0
        for _ in range(max_cycles):
            send = k < len(beats) and rng.random() >= gap
            ctx.set(dut.s_axis_tvalid, send)
            if send:
                ctx.set(dut.s_axis_tdata, beats[k][0])
                ctx.set(dut.s_axis_tlast, beats[k][1])
            ready = rng.random() >= stall
            ctx.set(dut.m_axis_tready, ready)
            s_ready, m_valid = ctx.get(dut.s_axis_tready), ctx.get(dut.m_axis_tvalid)
            m_data, m_last = ctx.get(dut.m_axis_tdata), ctx.get(dut.m_axis_tlast)
            await ctx.tick()
            if send and s_ready:
                k += 1
            if ready and m_valid:
                current.append(m_data)
                if m_last:
                    results.append(current[:])
                    current.clear()
                    if len(results) == len(frames):
                        return
        raise AssertionError(f"{len(results)} of {len(frames)} results after {max_cycles} "
                             f"cycles ({k} of {len(beats)} words taken)")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return results


def to_words(image):
    return [int.from_bytes(bytes(image[j:j + 4]), "little") for j in range(0, len(image), 4)]


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_frames_byte_order_and_layout(seed):
    rng = random.Random(10 + seed)
    images = [[rng.randrange(256) for _ in range(IMAGE_BYTES)] for _ in range(3)]
    results = run_frames([to_words(im) for im in images], seed=seed)
    for n, (im, words) in enumerate(zip(images, results)):
        assert len(words) == 1 + CLASSES
        r = decode_result(words)
        pred, logits = expected(im)
        assert (r["class"], r["logits"]) == (pred, logits), f"image {n}"
        assert (r["short"], r["long"], r["frame"]) == (False, False, n)
        assert words[0] >> 10 & 0x3F == 0 and words[0] & 0xFF == pred


def test_short_and_long_frames_keep_the_next_image_aligned():
    rng = random.Random(5)
    images = [[rng.randrange(256) for _ in range(IMAGE_BYTES)] for _ in range(4)]
    short = to_words(images[0])[:3]                           # 12 of 24 bytes
    long_ = to_words(images[1]) + [0xDEADBEEF, 0x01020304]     # two extra words
    frames = [short, long_, to_words(images[2]), to_words(images[3])[:1]]
    results = [decode_result(w) for w in run_frames(frames, seed=3)]
    padded = images[0][:12] + [0] * 12
    assert (results[0]["class"], results[0]["logits"]) == expected(padded)
    assert (results[0]["short"], results[0]["long"]) == (True, False)
    assert (results[1]["class"], results[1]["logits"]) == expected(images[1])
    assert (results[1]["short"], results[1]["long"]) == (False, True)
    assert (results[2]["class"], results[2]["logits"]) == expected(images[2])
    assert (results[2]["short"], results[2]["long"]) == (False, False)
    assert (results[3]["class"], results[3]["logits"]) == expected(images[3][:4] + [0] * 20)
    assert results[3]["short"] and [r["frame"] for r in results] == [0, 1, 2, 3]


def test_full_rate_without_gaps():
    """Without gaps or stalls the input takes a word every 4 cycles (one byte per cycle)."""
    rng = random.Random(7)
    images = [[rng.randrange(256) for _ in range(IMAGE_BYTES)] for _ in range(2)]
    results = run_frames([to_words(im) for im in images], gap=0.0, stall=0.0,
                         max_cycles=2 * IMAGE_BYTES + 4 * (1 + CLASSES) + 20)
    assert [expected(im) for im in images] == [
        (decode_result(w)["class"], decode_result(w)["logits"]) for w in results]
