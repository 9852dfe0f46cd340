"""Export one calibrated ReActNet-18 stage layer to a ``bincount-layer`` .npz (and lane vectors).

The layer is :func:`bincount.model.export.probe.calibrated_layer` (fixed seed, BN calibrated on
CIFAR-10 test images); ``--vectors`` also writes golden vectors of one output lane from the
same layer (:func:`bincount.model.export.vectors.vectors_from_layer`). Nothing is written unless
everything was computed; each file is written atomically. Outputs that exist are refused unless
``--force``.
"""

__all__ = ["add_arguments", "run", "default_output"]


#: Widest layer that is exported (the widest ReActNet-18 layer has 512 output channels).
MAX_COUT = 2048
MAX_COUNT = 65536


def default_output(cin):
    return f"build/layers/layer_cin{cin}.npz"


def add_arguments(parser):
    from bincount.options import SEED_MAX, int_in, seed

    parser.add_argument("--cin", type=int, required=True,
                        help="input channels: 64, 128, 256 or 512 (N = 9 * cin)")
    parser.add_argument("--cout", type=int_in(1, MAX_COUT), default=None,
                        help=f"output channels, 1..{MAX_COUT} (default: cin, as in the stage)")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of weights, images, sampling, 0..{SEED_MAX} (default 0)")
    parser.add_argument("-o", "--output", default=None,
                        help="layer file (default: build/layers/layer_cin{C}.npz)")
    parser.add_argument("--vectors", default=None, metavar="FILE",
                        help="also write golden lane vectors to FILE (.npz)")
    parser.add_argument("--count", type=int_in(1, MAX_COUNT), default=None,
                        help=f"number of lane vectors with --vectors, 1..{MAX_COUNT} "
                             f"(default 256)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the CIFAR-10 JPEG test archive test.tar.gz "
                             "(default: $BINCOUNT_CIFAR_DIR, data/cifar10-jpeg, "
                             "../shared/data/cifar10-jpeg)")
    parser.add_argument("--force", action="store_true", help="replace output files that exist")


def run(args):
    from pathlib import Path

    from bincount.errors import BincountError
    from bincount.fileio import check_outputs
    from bincount.model.export.probe import STAGE_MAP
    from bincount.options import refuse_given

    if args.cin not in STAGE_MAP:
        raise BincountError(f"--cin {args.cin} is not a ReActNet-18 stage width; "
                            f"expected one of {sorted(STAGE_MAP)}")
    if not args.vectors:
        refuse_given(args, ("count",), "applies with --vectors FILE only")
    count = 256 if args.count is None else args.count
    out = Path(args.output or default_output(args.cin))
    # fail before the slow part, and before writing
    check_outputs([("-o", out), ("--vectors", args.vectors)], force=args.force)

    from bincount.fileio import atomic_write_all, npz_bytes
    from bincount.model.export.layer_export import layer_arrays, validate_layer
    from bincount.model.export.probe import calibrated_layer
    from bincount.model.export.vectors import (DEFAULT_IMAGES, check_lane_vectors, layer_meta_for,
                                        vectors_from_layer)

    layer, x, info = calibrated_layer(args.cin, args.cout, seed=args.seed,
                                      images=DEFAULT_IMAGES[args.cin], data_dir=args.data_dir)
    vectors = None
    if args.vectors:
        vectors = vectors_from_layer(layer, x, info, count=count, seed=args.seed)
        check_lane_vectors(vectors)
    arrays = layer_arrays(layer, layer_meta_for(layer, info, args.seed))
    validate_layer(arrays, where="exported layer")
    files = {out: npz_bytes(**{k: v for k, v in arrays.items() if k != "meta"})}
    if vectors is not None:
        files[Path(args.vectors)] = npz_bytes(**vectors)
    atomic_write_all(files)      # all or nothing; earlier files stay when a write fails
    meta = arrays["meta"]
    print(f"wrote {out} (cin {meta['cin']}, cout {meta['cout']}, N {meta['n']}, "
          f"shift {meta['shift']})" + (f" and {args.vectors} ({len(vectors['count'])} vectors)"
                                       if vectors is not None else ""))
    return 0
