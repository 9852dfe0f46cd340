"""Bit helpers: sign(0) = +1, little bit order, XNOR-popcount, im2col (docs/conventions.md)."""

import numpy as np
import pytest

from bincount.model.export.bits import (bits_to_int, conv_out_size, im2col_bits, pack_bits,
                                 packed_bytes, popcount_bytes, sign_bits, unpack_bits,
                                 xnor_popcount)


def test_sign_of_zero_is_plus_one():
    x = np.array([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert sign_bits(x).tolist() == [0, 0, 1, 1, 1, 1]
    assert sign_bits(x).dtype == np.uint8


def test_pack_little_bit_order_hand_built():
    # element n is bit n % 8 of byte n // 8; unused high bits of the last byte are 0
    bits = np.zeros(11, np.uint8)
    bits[[0, 3, 8, 10]] = 1
    packed = pack_bits(bits)
    assert packed.tolist() == [0b00001001, 0b00000101]
    assert bits_to_int(bits) == (1 << 0) | (1 << 3) | (1 << 8) | (1 << 10)
    assert int.from_bytes(packed.tobytes(), "little") == bits_to_int(bits)
    assert unpack_bits(packed, 11).tolist() == bits.tolist()


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 576, 4608])
def test_pack_roundtrip_and_sizes(n):
    rng = np.random.default_rng(n)
    bits = rng.integers(0, 2, size=(3, n), dtype=np.uint8)
    packed = pack_bits(bits)
    assert packed.shape == (3, packed_bytes(n)) == (3, (n + 7) // 8)
    assert np.array_equal(unpack_bits(packed, n), bits)


def test_pack_rejects_non_bits():
    with pytest.raises(ValueError):
        pack_bits(np.array([0, 2]))


@pytest.mark.parametrize("n", [1, 5, 8, 9, 100, 576, 1152])
def test_xnor_popcount_matches_naive(n):
    rng = np.random.default_rng(100 + n)
    a = rng.integers(0, 2, size=(20, n), dtype=np.uint8)
    w = rng.integers(0, 2, size=(20, n), dtype=np.uint8)
    naive = (a == w).sum(axis=1)
    got = xnor_popcount(pack_bits(a), pack_bits(w), n)
    assert got.dtype == np.int64
    assert np.array_equal(got, naive)
    # broadcasting: every act against every weight
    grid = xnor_popcount(pack_bits(a)[:, None], pack_bits(w)[None], n)
    assert np.array_equal(grid, (a[:, None, :] == w[None, :, :]).sum(-1))


def test_xnor_popcount_masks_padding_bits():
    n = 9          # 2 bytes, 7 unused bits in the last
    a = np.array([[0xFF, 0xFF]], np.uint8)
    w = np.array([[0xFF, 0x01]], np.uint8)   # differ only in unused bits 9..15
    assert xnor_popcount(a, w, n).tolist() == [9]
    zeros = np.zeros((1, 2), np.uint8)
    assert xnor_popcount(zeros, zeros, n).tolist() == [9]     # all zeros: all match
    assert xnor_popcount(zeros, np.array([[0xFF, 0x01]], np.uint8), n).tolist() == [0]


def test_popcount_bytes():
    a = np.arange(256, dtype=np.uint8)
    assert popcount_bytes(a).tolist() == [bin(i).count("1") for i in range(256)]


def test_im2col_bit_order_hand_built():
    # Cin = 2, 3x3 map, k = 3: n = (ky*3 + kx)*2 + ci; outside the map the bit is 1
    x = np.zeros((2, 3, 3), np.uint8)
    x[0, 0, 0] = 1          # channel 0, top-left pixel
    x[1, 1, 2] = 1          # channel 1, middle row, right column
    cols = im2col_bits(x, 3, 1)
    assert cols.shape == (3, 3, 18)
    # output (0, 0): taps with ky = 0 or kx = 0 fall outside -> 1
    v = cols[0, 0]
    for ky in range(3):
        for kx in range(3):
            for ci in range(2):
                n = (ky * 3 + kx) * 2 + ci
                yy, xx = 0 + ky - 1, 0 + kx - 1
                inside = 0 <= yy < 3 and 0 <= xx < 3
                assert v[n] == (x[ci, yy, xx] if inside else 1), (ky, kx, ci)
    # centre output: tap (1, 1) is pixel (1, 1); pixel (1, 2) of channel 1 is tap (1, 2)
    c = cols[1, 1]
    assert c[(0 * 3 + 0) * 2 + 0] == 1           # x[0, 0, 0]
    assert c[(1 * 3 + 2) * 2 + 1] == 1           # x[1, 1, 2]
    assert c.sum() == 2


def test_im2col_stride_two_and_sizes():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(4, 8, 7), dtype=np.uint8)
    cols = im2col_bits(x, 3, 2)
    assert cols.shape == (conv_out_size(8, 3, 2), conv_out_size(7, 3, 2), 36) == (4, 4, 36)
    # output (2, 1) reads input rows 3..5, cols 1..3
    expect = x[:, 3:6, 1:4].transpose(1, 2, 0).reshape(-1)
    assert np.array_equal(cols[2, 1], expect)
    assert conv_out_size(32, 3, 1) == 32 and conv_out_size(32, 3, 2) == 16


def test_im2col_rejects_wrong_rank():
    with pytest.raises(ValueError):
        im2col_bits(np.zeros((3, 3), np.uint8), 3)
