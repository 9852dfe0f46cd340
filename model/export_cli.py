"""Export one calibrated ReActNet-18 stage layer to a ``bincount-layer`` .npz (and lane vectors).

The layer is :func:`bincount.model.probe.calibrated_layer` (fixed seed, BN calibrated on
CIFAR-10 test images); ``--vectors`` also writes golden vectors of one output lane from the
same layer (:func:`bincount.model.vectors.vectors_from_layer`). Nothing is written unless
everything was computed; each file is written atomically.
"""

__all__ = ["add_arguments", "run", "default_output"]


def default_output(cin):
    return f"build/layers/layer_cin{cin}.npz"


def add_arguments(parser):
    parser.add_argument("--cin", type=int, required=True,
                        help="input channels: 64, 128, 256 or 512 (N = 9 * cin)")
    parser.add_argument("--cout", type=int, default=None,
                        help="output channels (default: cin, as in the stage)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, images, sampling")
    parser.add_argument("-o", "--output", default=None,
                        help="layer file (default: build/layers/layer_cin{C}.npz)")
    parser.add_argument("--vectors", default=None, metavar="FILE",
                        help="also write golden lane vectors to FILE (.npz)")
    parser.add_argument("--count", type=int, default=256, help="number of lane vectors")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the CIFAR-10 JPEG archives "
                             "(default: $BINCOUNT_CIFAR_DIR, data/cifar10-jpeg, ...)")


def run(args):
    from pathlib import Path

    from bincount.errors import BincountError
    from bincount.fileio import ensure_dir
    from bincount.model.probe import STAGE_MAP

    if args.cin not in STAGE_MAP:
        raise BincountError(f"--cin {args.cin} is not a ReActNet-18 stage width; "
                            f"expected one of {sorted(STAGE_MAP)}")
    if args.cout is not None and args.cout < 1:
        raise BincountError(f"--cout {args.cout} must be a positive integer")
    if args.count < 1:
        raise BincountError(f"--count {args.count} must be a positive integer")
    out = Path(args.output or default_output(args.cin))
    targets = [out] + ([Path(args.vectors)] if args.vectors else [])
    for path in targets:                     # fail before the slow part, and before writing
        if path.is_dir():
            raise BincountError(f"output {str(path)!r} is a directory; expected a file name")
        ensure_dir(path.parent)

    from bincount.fileio import atomic_savez
    from bincount.model.layer_export import export_layer
    from bincount.model.probe import calibrated_layer
    from bincount.model.vectors import (DEFAULT_IMAGES, check_lane_vectors, layer_meta_for,
                                        vectors_from_layer)

    layer, x, info = calibrated_layer(args.cin, args.cout, seed=args.seed,
                                      images=DEFAULT_IMAGES[args.cin], data_dir=args.data_dir)
    vectors = None
    if args.vectors:
        vectors = vectors_from_layer(layer, x, info, count=args.count, seed=args.seed)
        check_lane_vectors(vectors)
    existed = out.exists()
    arrays = export_layer(layer, out, meta=layer_meta_for(layer, info, args.seed))
    try:
        if vectors is not None:
            atomic_savez(args.vectors, **vectors)
    except BaseException:
        if not existed:
            out.unlink(missing_ok=True)      # all or nothing
        raise
    meta = arrays["meta"]
    print(f"wrote {out} (cin {meta['cin']}, cout {meta['cout']}, N {meta['n']}, "
          f"shift {meta['shift']})" + (f" and {args.vectors} ({len(vectors['count'])} vectors)"
                                       if vectors is not None else ""))
    return 0
