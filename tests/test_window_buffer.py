"""WindowBuffer in the Amaranth simulator against the integer reference: the RSign bits of a
map written as bit words, then every fold of every output pixel read back as the reference's
window bits (pad bit outside the map), ``latency`` cycles after the fold."""

import dataclasses

import numpy as np
import pytest

from bincount.gateware.block_params import block_params
from bincount.gateware.block_sequencer import fold_layout
from bincount.gateware.window_buffer import WindowBuffer
from engine_cases import reference_tensors, run_cycles, tiny_export, to_int, window_bits


@pytest.mark.parametrize("cin, stride, pad_bit, lanes, bpc, split", [
    (16, 1, 1, 4, 8, False), (16, 2, 0, 4, 4, False), (8, 1, 0, 8, 4, False),
    (16, 1, 1, 2, 16, False),
    # split weights: tap 8's slice f mod 8 of block f // 8 beside every fold (act8)
    (16, 1, 1, 4, 8, True), (16, 2, 0, 4, 8, True), (32, 1, 0, 16, 8, True),
    (16, 1, 1, 2, 16, True)])
def test_window_bits_match_reference(cin, stride, pad_bit, lanes, bpc, split):
    size = 4
    ex = tiny_export(cin, cin * stride, stride, size, "binarized", True, "pow2", pad_bit,
                     seed=cin + bpc)
    x = np.random.default_rng(stride).integers(-700, 700, (cin, size, size))
    p = dataclasses.replace(block_params(ex, "stage1.conv1", lanes, bpc), split_weights=split)
    act = reference_tensors(ex, x)["act_bits"]
    dut = WindowBuffer(p)
    assert dut.latency == 5 + split                  # split: the word registered before the select
    wb = max(bpc, lanes)
    inputs = []
    for y in range(size):                                  # slot y (size <= 3 + stride)
        for xx in range(size):
            for j in range(cin // wb):
                inputs.append({"w.slot": y, "w.x": xx, "w.sub": j, "w.en": 1,
                               "w.data": to_int(act[j * wb:(j + 1) * wb, y, xx])})
    inputs.append({"w.en": 0})
    layout, K, B, CB = fold_layout(p), 3 + stride, bpc, cin // bpc
    reads, want, want8 = len(inputs), [], []
    assert p.folds == (8 if split else 9) * CB
    for oy in range(p.out_size):
        for ox in range(p.out_size):
            win = window_bits(act, pad_bit, stride, oy, ox)
            for f in range(p.folds):
                tap, cb = divmod(f, CB)
                fold = {"oy": oy, "ox": ox, "ky": tap // 3, "kx": tap % 3, "cb": cb,
                        "top_slot": (K - 1 + oy * stride) % K, "fold": f}
                inputs.append({"fold": layout.const(fold).as_value().value})
                want.append(to_int(win[f * B:(f + 1) * B]))
                j, k = divmod(f, 8)
                lo = 8 * cin + j * B + k * B // 8
                want8.append(to_int(win[lo:lo + B // 8]))
    got = run_cycles(dut, inputs, ["act", "act8"] if split else ["act"], extra=dut.latency)
    for k, w in enumerate(want):
        assert got[reads + k + dut.latency - 1]["act"] == w, k
        if split:
            assert got[reads + k + dut.latency - 1]["act8"] == want8[k], k
