"""cocotb testbench of ``XnorPopcount``: ``count = popcount(~(act ^ wgt))`` over N bits.

Stimulus, streamed back to back with random ``in_valid`` bubbles:

* the model's golden lane vectors (``bincount.model.export.vectors``: input bits of real output
  pixels of a calibrated layer on CIFAR-10 images, the weight bits of their channel, and the
  count the model computed);
* edge cases built here, expected counts from the torch-free reference
  ``bincount.model.export.bits.xnor_popcount``: all-zero and all-one act / wgt, alternating bits, a
  single agreeing (or disagreeing) bit at the first, middle and last position, half, every
  eighth bit, and random vectors of low, even and high agreement.
"""

from __future__ import annotations

import random

import cocotb
import pytest

from bincount.model.export.bits import xnor_popcount
from bincount.model.export.vectors import load_lane_vectors

from . import simlib
from .lanetb import StreamTB, int_to_packed, mask, numbered, packed_to_int


def golden_items(data: dict, n: int) -> list[dict]:
    return [{"label": f"golden {i}", "channel": int(data["channel"][i]),
             "inputs": {"act": packed_to_int(data["act_bits"][i], n),
                        "wgt": packed_to_int(data["wgt_bits"][i], n)},
             "expected": {"count": int(data["count"][i])}}
            for i in range(len(data["channel"]))]


def edge_items(n: int, rng: random.Random) -> list[dict]:
    """Edge cases; ``agree`` is the mask of positions where act and wgt agree (XNOR = 1)."""
    full = mask(n)
    alt = int("01" * ((n + 1) // 2), 2) & full
    every8 = sum(1 << i for i in range(0, n, 8))
    cases = [
        ("all-zero act and wgt", 0, 0),
        ("all-one act and wgt", full, full),
        ("all-zero act, all-one wgt", 0, full),
        ("all-one act, all-zero wgt", full, 0),
        ("alternating act = wgt", alt, alt),
        ("alternating act = ~wgt", alt, full ^ alt),
    ]
    agree_masks = [
        ("only bit 0 agrees", 1),
        (f"only bit {n - 1} agrees", 1 << (n - 1)),
        (f"only bit {n // 2} agrees", 1 << (n // 2)),
        ("only bit 0 disagrees", full ^ 1),
        (f"only bit {n - 1} disagrees", full ^ (1 << (n - 1))),
        ("low half agrees", mask(n // 2)),
        ("high half agrees", full ^ mask(n // 2)),
        ("every 8th bit agrees", every8),
        ("every 8th bit disagrees", full ^ every8),
    ]
    for p in (0.02, 0.5, 0.98):
        agree = sum(1 << i for i in range(n) if rng.random() < p)
        agree_masks.append((f"random, {p:.0%} agree", agree))
    for label, agree in agree_masks:
        wgt = rng.getrandbits(n)
        cases.append((label, wgt ^ (full ^ agree), wgt))
    items = []
    for label, act, wgt in cases:
        count = int(xnor_popcount(int_to_packed(act, n), int_to_packed(wgt, n), n))
        items.append({"label": label, "channel": None,
                      "inputs": {"act": act, "wgt": wgt}, "expected": {"count": count}})
    return items


@cocotb.test()
async def xnor_popcount_stream(dut):
    """Golden vectors and edge cases, back to back with random bubbles, checked in order."""
    case = simlib.load_case()
    n = case["params"]["n"]
    data = load_lane_vectors(case["vectors"])
    assert data["meta"]["n"] == n, f"vector file is for N = {data['meta']['n']}, block N = {n}"
    rng = random.Random(case["seed"])
    items = edge_items(n, rng) + golden_items(data, n)
    rng.shuffle(items)
    tb = StreamTB(dut, case["manifest"], seed=case["seed"])
    await tb.start()
    await tb.run(numbered(items))


@pytest.mark.parametrize("n", simlib.WIDTHS)
def test_xnor_popcount(request, golden_vectors, n):
    simlib.run_block(request.node.name, __name__, "xnor_popcount", {"n": n},
                     {"vectors": str(golden_vectors(n))})
