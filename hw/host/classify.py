#!/usr/bin/env python3
"""Classify images with the bincount overlay on a Zynq UltraScale+ board (PYNQ).

    python3 classify.py --check              the bundled sample images vs the integer reference
    python3 classify.py IMAGE [IMAGE ...]    32x32 RGB PNG/JPEG files

Loads ``bincount.bit`` (with ``bincount.hwh`` beside it), sends ``weights.bin`` once through
``axi_dma_1`` into the weight store, then every image through ``axi_dma_0``: 3,072 bytes
(R, G, B per pixel, raster order) as 768 little-endian 32-bit words, ``tlast`` on the last;
reads the 11 result words (word 0: class in bits 7:0, short / long frame flags in bits 8 / 9,
frame number in bits 31:16; words 1-10: the logits, sign-extended) and prints the class, its
CIFAR-10 name and the logits, then images per second (DMA round trips included).

Exit status: 0; 1 when ``--check`` finds a difference; 2 on bad input (one line).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
IMAGE_BYTES = 32 * 32 * 3
HERE = Path(__file__).resolve().parent


def fail(msg):
    print(f"classify.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def decode(words):
    w0 = int(words[0])
    logits = [int(w) - (1 << 32) if int(w) >> 31 else int(w) for w in words[1:]]
    return {"class": w0 & 0xFF, "short": bool(w0 >> 8 & 1), "long": bool(w0 >> 9 & 1),
            "frame": w0 >> 16, "logits": logits}


def read_image(path):
    try:
        from PIL import Image
    except ImportError:
        fail("reading PNG/JPEG needs Pillow (pip install pillow)")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        fail(f"{path}: cannot read the image ({exc}); expected a 32x32 RGB PNG or JPEG")
    if arr.shape != (32, 32, 3):
        fail(f"{path}: the image is {arr.shape[1]}x{arr.shape[0]}; expected 32x32")
    return arr


class Overlay:
    """The bincount overlay: weight load and one image at a time through the DMAs."""

    def __init__(self, bitfile):
        from pynq import Overlay as PynqOverlay, allocate

        self.allocate = allocate
        self.ol = PynqOverlay(str(bitfile))
        self.dma, self.wdma = self.ol.axi_dma_0, self.ol.axi_dma_1
        self.inbuf = allocate(shape=(IMAGE_BYTES,), dtype=np.uint8)
        self.outbuf = allocate(shape=(11,), dtype=np.uint32)

    def load_weights(self, path):
        words = np.fromfile(path, dtype="<u4")
        buf = self.allocate(shape=words.shape, dtype=np.uint32)
        buf[:] = words
        self.wdma.sendchannel.transfer(buf)
        self.wdma.sendchannel.wait()
        buf.freebuffer()

    def classify(self, image):
        self.inbuf[:] = np.ascontiguousarray(image, dtype=np.uint8).reshape(-1)
        self.dma.recvchannel.transfer(self.outbuf)
        self.dma.sendchannel.transfer(self.inbuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        return decode(self.outbuf)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*", help="32x32 RGB PNG/JPEG files")
    ap.add_argument("--check", action="store_true",
                    help="classify reference_images.bin and compare with reference.json")
    ap.add_argument("--bit", default=str(HERE / "bincount.bit"))
    ap.add_argument("--weights", default=str(HERE / "weights.bin"))
    args = ap.parse_args(argv)
    if not args.images and not args.check:
        fail("give image files or --check")
    for p in [args.bit, args.weights, str(Path(args.bit).with_suffix(".hwh"))]:
        if not Path(p).is_file():
            fail(f"{p} does not exist; run the Vivado build (build.tcl) and copy its outputs "
                 f"here")
    names, images, expected = [], [], []
    if args.check:
        ref = json.loads((HERE / "reference.json").read_text())
        raw = np.fromfile(HERE / "reference_images.bin", dtype=np.uint8)
        pix = raw.reshape(-1, 32, 32, 3)
        for e in ref["images"]:
            names.append(f"sample {e['index']}")
            images.append(pix[e["index"]])
            expected.append(e)
    for p in args.images:
        names.append(p)
        images.append(read_image(p))
        expected.append(None)
    ol = Overlay(args.bit)
    ol.load_weights(args.weights)
    bad = 0
    t0 = time.perf_counter()
    for name, image, exp in zip(names, images, expected):
        r = ol.classify(image)
        flags = " (short frame)" if r["short"] else " (long frame)" if r["long"] else ""
        print(f"{name}: class {r['class']} ({CLASSES[r['class']] if r['class'] < 10 else '?'})"
              f"{flags} logits {r['logits']}")
        if exp is not None and (r["class"], r["logits"]) != (exp["class"], exp["logits"]):
            bad += 1
            print(f"  MISMATCH: reference class {exp['class']} logits {exp['logits']}")
    dt = time.perf_counter() - t0
    print(f"{len(images)} images in {dt:.3f} s: {len(images) / dt:.1f} images/s")
    if args.check:
        print("check: " + ("all equal to the integer reference" if not bad else
                           f"{bad} of {len(expected)} differ"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
