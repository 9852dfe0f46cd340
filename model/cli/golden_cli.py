"""Per-layer golden vectors of an exported network for chosen test images (``bincount-golden``).

The vectors come from the torch-free integer reference (``network_reference.golden``): the
quantised input, stem, every binary layer's input bits, counts, outputs, shortcut and residual
stream, and the logits. Images are CIFAR-10 test images by index (uint8 pixels through the
export's input look-up table) or, with ``--synthetic N``, seeded synthetic images. An output
that exists is refused unless ``--force``.
"""

__all__ = ["add_arguments", "run", "add_image_arguments", "golden_images", "check_targets",
           "write_all", "default_output"]


def default_output(export):
    from pathlib import Path

    return str(Path("build") / "golden" / (Path(export).stem + "_golden.npz"))


DEFAULT_IMAGES = "0,1,2,3"
DATA_HELP = ("folder holding the CIFAR-10 JPEG test archive test.tar.gz (default: "
             "$BINCOUNT_CIFAR_DIR, data/cifar10-jpeg, ../shared/data/cifar10-jpeg)")


def add_image_arguments(parser):
    from bincount.options import SEED_MAX, seed

    parser.add_argument("--images", default=None,
                        help=f"comma-separated CIFAR-10 test indices 0..9999 (default: "
                             f"{DEFAULT_IMAGES})")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="use N (1..10000) seeded synthetic images instead of CIFAR-10")
    parser.add_argument("--seed", type=seed, default=None,
                        help=f"seed of --synthetic, 0..{SEED_MAX} (default: 0)")
    parser.add_argument("--data-dir", default=None, help=DATA_HELP)
    parser.add_argument("--force", action="store_true",
                        help="replace output files that exist")


def add_arguments(parser):
    parser.add_argument("--export", required=True, help="a bincount-network .npz (bincount export)")
    parser.add_argument("-o", "--output", default=None,
                        help="golden file (default: build/golden/<export name>_golden.npz)")
    add_image_arguments(parser)


def check_targets(outputs, force=False, inputs=()):
    """Every output checked before any work (:func:`bincount.fileio.check_outputs`)."""
    from bincount.fileio import check_outputs

    return check_outputs(outputs, force=force, inputs=inputs)


def check_image_options(args):
    """Refuse image options that are out of range or do not apply to the chosen source."""
    from bincount.errors import BincountError
    from bincount.options import refuse_given

    if args.synthetic is not None:
        if not 1 <= args.synthetic <= 10000:
            raise BincountError(f"--synthetic {args.synthetic}; expected 1..10000")
        refuse_given(args, ("images", "data_dir"), "does not apply with --synthetic (seeded "
                     "synthetic images); drop it, or drop --synthetic to use CIFAR-10 images")
    else:
        refuse_given(args, ("seed",), "applies with --synthetic only")


def golden_images(args):
    """``(images, indices, labels, source)`` selected by the image arguments."""
    from bincount.errors import BincountError

    check_image_options(args)
    if args.synthetic is not None:
        from bincount.model.nets.calibrate import synthetic_images

        seed = args.seed or 0
        x = synthetic_images(args.synthetic, seed).numpy()
        return x, list(range(args.synthetic)), None, {"images": "synthetic", "seed": seed}
    text = DEFAULT_IMAGES if args.images is None else args.images
    try:
        idx = [int(v) for v in str(text).split(",")]       # an empty entry is an error
    except ValueError:
        raise BincountError(f"--images {text!r}; expected comma-separated integers such as "
                            f"0,1,2") from None
    if not idx or any(not 0 <= i < 10000 for i in idx):
        raise BincountError(f"--images {text!r}; expected test indices in 0..9999")
    from bincount.model.data.cifar import load_test_images

    images, labels = load_test_images(indices=idx, data_dir=args.data_dir)
    return images, idx, [int(v) for v in labels], {"images": "CIFAR-10 test (uint8 pixels)"}


def write_all(items):
    """Write ``[(path, arrays), ...]`` as ``.npz`` files, all or none
    (:func:`bincount.fileio.atomic_write_all`: a failed write leaves earlier files as they
    were)."""
    from bincount.fileio import atomic_write_all, npz_bytes

    atomic_write_all({path: npz_bytes(**{k: v for k, v in arrays.items() if k != "meta"})
                      for path, arrays in items})


def run(args):
    from pathlib import Path

    from bincount.model.export.network_reference import NetworkReference, golden

    out = Path(args.output or default_output(args.export))
    check_image_options(args)
    check_targets([("-o", out)], force=args.force, inputs=[("--export", args.export)])
    ref = NetworkReference(args.export)
    x, idx, labels, source = golden_images(args)
    source["export"] = Path(args.export).name
    arrays = golden(ref, x, indices=idx, labels=labels, source=source)
    write_all([(out, arrays)])
    print(f"wrote {out} ({len(idx)} images, {len(ref.layers)} binary layers)")
    return 0
