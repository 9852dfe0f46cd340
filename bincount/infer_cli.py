"""Classify images on a board (or its simulation) over a serial port, with the board protocol
(``docs/protocol.md``): prints the class and the logits of every image and the images per
second.

IMAGE is a 32x32 PNG or JPEG file (any mode Pillow converts to RGB) or ``test:N``, test image
N of CIFAR-10 (from the data folder, else the bundled sample ``samples/cifar10-test``, which
holds N = c*1000 + 0..199). Every image is read, and ``--export`` checked, before the port is
opened. The board's INFO reply is checked first: protocol version, image size and, with
``--export``, that the board runs that network (export digest, classes, logit width).
"""

__all__ = ["add_arguments", "run", "load_images", "DEFAULT_BAUD", "DEFAULT_TIMEOUT"]

#: The bit rate ``bincount build --board ulx3s-85f`` uses by default.
DEFAULT_BAUD = 115200
DEFAULT_TIMEOUT = 5.0
IMAGE_SIZE = 32


def add_arguments(parser):
    from bincount.options import float_in, int_in

    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="a 32x32 PNG/JPEG file, or test:N (CIFAR-10 test image N)")
    parser.add_argument("--port", required=True,
                        help="serial port of the board (e.g. /dev/ttyUSB0)")
    parser.add_argument("--baud", type=int_in(300, 50_000_000), default=DEFAULT_BAUD,
                        help=f"bit rate of the board's UART (default {DEFAULT_BAUD})")
    parser.add_argument("--export", metavar="FILE", default=None,
                        help="check that the board runs this network export (.npz)")
    parser.add_argument("--timeout", type=float_in(0, 3600, lo_open=True),
                        default=DEFAULT_TIMEOUT,
                        help=f"seconds a reply may take beyond its time on the line "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def load_images(specs):
    """``[(name, bytes)]``: R, G, B per pixel in raster order, 3,072 bytes per image."""
    import warnings
    from pathlib import Path

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from bincount.errors import BincountError

    out, tests = [], []
    for spec in specs:
        if spec.startswith("test:"):
            try:
                index = int(spec[5:], 10)
            except ValueError:
                raise BincountError(f"IMAGE {spec!r}: {spec[5:]!r} is not a test index; "
                                    f"expected test:N with N an integer") from None
            tests.append((len(out), index))
            out.append((spec, None))
            continue
        path = Path(spec)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise BincountError(f"IMAGE {spec!r} {what}; expected a 32x32 PNG or JPEG file "
                                f"or test:N")
        bomb = (Image.DecompressionBombError, Image.DecompressionBombWarning)
        try:
            with warnings.catch_warnings():     # a huge header: an error, not a warning line
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    if im.format not in ("PNG", "JPEG"):
                        raise BincountError(f"IMAGE {spec!r} is a {im.format} image; "
                                            f"expected a 32x32 PNG or JPEG file or test:N")
                    if im.size != (IMAGE_SIZE, IMAGE_SIZE):     # from the header alone
                        raise BincountError(f"IMAGE {spec!r} is {im.size[0]}x{im.size[1]}; "
                                            f"expected a {IMAGE_SIZE}x{IMAGE_SIZE} image "
                                            f"(CIFAR-10 size)")
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, *bomb) as exc:
            if isinstance(exc, BincountError):
                raise
            what = ("claims too many pixels to decode safely" if isinstance(exc, bomb)
                    else "cannot be decoded")
            raise BincountError(f"IMAGE {spec!r} {what} ({type(exc).__name__}); "
                                f"expected a 32x32 PNG or JPEG file or test:N") from None
        out.append((spec, arr.tobytes()))
    if tests:
        from bincount.model.data.cifar import load_test_images

        pixels, _ = load_test_images(indices=[i for _, i in tests])
        for (pos, _), px in zip(tests, pixels):
            out[pos] = (out[pos][0], np.ascontiguousarray(px, dtype=np.uint8).tobytes())
    return out


def _export_identity(path):
    """``(digest prefix, classes, logit_bits, image size)`` of the export at ``path``."""
    from bincount import protocol as P
    from bincount.hw.network_emit import export_digest
    from bincount.model.export.network_file import load_export

    export = load_export(path)
    meta = export["meta"]
    return (bytes.fromhex(export_digest(export))[:P.DIGEST_BYTES], int(meta["head"]["classes"]),
            int(meta["formats"]["logit_bits"]), int(meta["input"]["size"]))


def _check_board(info, args, expected, image_bytes):
    from bincount.errors import BincountError

    where = f"the board on {args.port}"
    if info.image_bytes != image_bytes or info.height != IMAGE_SIZE:
        raise BincountError(f"{where} takes {info.width}x{info.height}x{info.channels} images "
                            f"({info.image_bytes} bytes); these are {IMAGE_SIZE}x{IMAGE_SIZE}x3")
    if expected is None:
        return
    digest, classes, logit_bits, _ = expected
    if info.digest != digest or info.classes != classes or info.logit_bits != logit_bits:
        raise BincountError(
            f"{where} runs another network (export digest {info.digest.hex()}, {info.classes} "
            f"classes, {info.logit_bits}-bit logits) than --export {args.export!r} (digest "
            f"{digest.hex()}, {classes} classes, {logit_bits}-bit logits); load the board with "
            f"a bitstream of that export, or leave out --export")


def _class_name(k, classes):
    from bincount.model.data.cifar import CLASSES

    return CLASSES[k] if classes == len(CLASSES) and 0 <= k < classes else f"class {k}"


def run(args):
    import json

    from bincount.board_link import BoardLink, open_serial
    from bincount.errors import BincountError

    images = load_images(args.images)
    expected = None
    if args.export is not None:
        expected = _export_identity(args.export)
        if expected[3] != IMAGE_SIZE:
            raise BincountError(f"--export {args.export!r} takes {expected[3]}x{expected[3]} "
                                f"images; bincount infer sends {IMAGE_SIZE}x{IMAGE_SIZE}")
    port = open_serial(args.port, args.baud)
    try:
        link = BoardLink(port, args.port, args.baud, args.timeout)
        info = link.hello()
        _check_board(info, args, expected, len(images[0][1]))
        results, seconds = link.classify([b for _, b in images], [n for n, _ in images])
    finally:
        port.close()
    rate = len(results) / seconds if seconds > 0 else float("inf")
    rows = [{"image": name, "class": r.prediction,
             "name": _class_name(r.prediction, info.classes), "logits": list(r.logits)}
            for (name, _), r in zip(images, results)]
    if args.json:
        print(json.dumps({"port": args.port, "baud": args.baud, "board": info.as_dict(),
                          "images": rows, "seconds": seconds, "images_per_second": rate},
                         indent=2))
        return 0
    print(f"board on {args.port}: protocol {info.version}, {info.width}x{info.height}x"
          f"{info.channels} images, {info.classes} classes, {info.logit_bits}-bit logits "
          f"({info.logit_frac} fractional bits), export digest {info.digest.hex()}, "
          f"{info.cycles_per_image} cycles per image")
    width = max(len(r["image"]) for r in rows)
    for r in rows:
        logits = " ".join(str(v) for v in r["logits"])
        print(f"{r['image']:<{width}}  class {r['class']} ({r['name']})  logits {logits}")
    print(f"{len(rows)} images in {seconds:.3f} s: {rate:.2f} images/s")
    return 0
