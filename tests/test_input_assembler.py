"""InputAssembler in the Amaranth simulator against the integer reference: an input map as a
stream with random gaps; every bit word written is the reference's RSign bits of its pixel,
``latency`` cycles after the beat that completes it; every beat goes to the residual buffer;
rows are counted."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bincount.gateware.block_params import block_params, to_beats
from bincount.gateware.input_assembler import InputAssembler
from engine_cases import reference_tensors, run_cycles, tiny_export, to_int


@pytest.mark.parametrize("cin, rsign, lanes, bpc", [(16, True, 4, 8), (16, False, 8, 4),
                                                    (8, True, 8, 8), (16, True, 2, 16)])
def test_bit_words_match_reference(cin, rsign, lanes, bpc):
    size = 4
    ex = tiny_export(cin, cin, 1, size, "binarized", rsign, "pow2", 1, seed=cin + bpc)
    x = np.random.default_rng(bpc).integers(-700, 700, (cin, size, size))
    p = block_params(ex, "stage1.conv1", lanes, bpc)
    act = reference_tensors(ex, x)["act_bits"]
    dut = InputAssembler(p)
    wb = max(bpc, lanes)
    beats = to_beats(x, lanes)
    rng = np.random.default_rng(1)
    accepted, bit_writes, res_writes, loaded = [], [], [], []

    async def tb(ctx):
        ctx.set(dut.low_k, 4)                       # rows 0..3 may be filled: the whole map
        k = 0
        for t in range(400):
            send = k < len(beats) and rng.random() >= 0.3
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, beats[k])
            w, r = dut.bits_w, dut.res_w
            _, _, ready, rows, *v = await ctx.tick().sample(
                dut.i.ready, dut.loaded, w.en, w.slot, w.x, w.sub, w.data,
                r.en, r.slot, r.x, r.sub, r.data)
            if v[0]:
                bit_writes.append((t, *v[1:5]))
            if v[5]:
                res_writes.append(tuple(v[6:10]))
            loaded.append(int(rows))
            if send and ready:
                k += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    want = [(y, xx, j, to_int(act[j * wb:(j + 1) * wb, y, xx]))
            for y in range(size) for xx in range(size) for j in range(cin // wb)]
    assert [w[1:] for w in bit_writes] == want
    assert res_writes == [(k // p.in_groups // size, k // p.in_groups % size, k % p.in_groups, b)
                          for k, b in enumerate(beats)]
    assert max(loaded) == size and loaded == sorted(loaded)


def test_latency_from_beat_to_bit_word():
    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1)
    p = block_params(ex, "stage1.conv1", 8, 8)                # one beat per bit word
    dut = InputAssembler(p)
    assert dut.latency == 2                 # pipe register + RSign compare
    got = run_cycles(dut, [{"low_k": 4, "i.valid": 1, "i.payload": 0x1234}, {"i.valid": 0}],
                     ["bits_w.en", "res_w.en"], extra=8)
    # the beat waits in the pipe register while the bias ROM fills after reset (its latency,
    # 3 cycles), leaves it after the third edge, and its bit word follows one cycle later
    fill = 3
    assert [t for t, o in enumerate(got) if o["res_w.en"]] == [fill - 1]
    assert [t for t, o in enumerate(got) if o["bits_w.en"]] == [fill - 1 + dut.latency - 1]
