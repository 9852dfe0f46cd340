"""Per-layer golden vectors of an exported network for chosen test images (``bincount-golden``).

The vectors come from the torch-free integer reference (``network_reference.golden``): the
quantised input, stem, every binary layer's input bits, counts, outputs, shortcut and residual
stream, and the logits. Images are CIFAR-10 test images by index (uint8 pixels through the
export's input look-up table) or, with ``--synthetic N``, seeded synthetic images.
"""

__all__ = ["add_arguments", "run", "add_image_arguments", "golden_images", "check_targets",
           "write_all", "default_output"]


def default_output(export):
    from pathlib import Path

    return str(Path("build") / "golden" / (Path(export).stem + "_golden.npz"))


def add_image_arguments(parser):
    parser.add_argument("--images", default="0,1,2,3",
                        help="comma-separated CIFAR-10 test indices (default: 0,1,2,3)")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="use N seeded synthetic images instead of CIFAR-10")
    parser.add_argument("--seed", type=int, default=0, help="seed of --synthetic")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the CIFAR-10 data (default: $BINCOUNT_CIFAR_DIR, "
                             "data/cifar10-jpeg, ...)")


def add_arguments(parser):
    parser.add_argument("--export", required=True, help="a bincount-network .npz (bincount export)")
    parser.add_argument("-o", "--output", default=None,
                        help="golden file (default: build/golden/<export name>_golden.npz)")
    add_image_arguments(parser)


def check_targets(paths):
    from bincount.errors import BincountError
    from bincount.fileio import ensure_dir

    for path in paths:
        if path.is_dir():
            raise BincountError(f"output {str(path)!r} is a directory; expected a file name")
        ensure_dir(path.parent)


def golden_images(args):
    """``(images, indices, labels, source)`` selected by the image arguments."""
    from bincount.errors import BincountError

    if args.synthetic is not None:
        if not 1 <= args.synthetic <= 10000:
            raise BincountError(f"--synthetic {args.synthetic}; expected 1..10000")
        from bincount.model.calibrate import synthetic_images

        x = synthetic_images(args.synthetic, args.seed).numpy()
        return x, list(range(args.synthetic)), None, {"images": "synthetic", "seed": args.seed}
    try:
        idx = [int(v) for v in str(args.images).split(",") if v.strip() != ""]
    except ValueError:
        raise BincountError(f"--images {args.images!r}; expected comma-separated integers") from None
    if not idx or any(not 0 <= i < 10000 for i in idx):
        raise BincountError(f"--images {args.images!r}; expected test indices in 0..9999")
    from bincount.model.cifar import load_test_images

    images, labels = load_test_images(indices=idx, data_dir=args.data_dir)
    return images, idx, [int(v) for v in labels], {"images": "CIFAR-10 test (uint8 pixels)"}


def write_all(items):
    """Write ``[(path, arrays), ...]`` atomically; on failure remove the ones this call created."""
    from bincount.fileio import atomic_savez

    created = []
    try:
        for path, arrays in items:
            existed = path.exists()
            atomic_savez(path, **{k: v for k, v in arrays.items() if k != "meta"})
            if not existed:
                created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise


def run(args):
    from pathlib import Path

    from bincount.model.network_reference import NetworkReference, golden

    out = Path(args.output or default_output(args.export))
    check_targets([out])
    ref = NetworkReference(args.export)
    x, idx, labels, source = golden_images(args)
    source["export"] = Path(args.export).name
    arrays = golden(ref, x, indices=idx, labels=labels, source=source)
    write_all([(out, arrays)])
    print(f"wrote {out} ({len(idx)} images, {len(ref.layers)} binary layers)")
    return 0
