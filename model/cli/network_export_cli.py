"""Export a trained network (checkpoint) as integers: one ``bincount-network`` .npz.

Optionally also writes per-layer golden vectors (``--golden``) of chosen CIFAR-10 test images
(or synthetic images). Nothing is written unless everything was computed; each file is written
atomically, and a failure while writing the second removes the first. Outputs that exist are
refused unless ``--force``; the image options apply with ``--golden`` only.
"""

__all__ = ["add_arguments", "run", "default_output"]


def default_output(checkpoint):
    from pathlib import Path

    return str(Path("build") / "export" / (Path(checkpoint).stem + ".npz"))


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint of bincount train (network config + model state)")
    parser.add_argument("-o", "--output", default=None,
                        help="export file (default: build/export/<checkpoint name>.npz)")
    parser.add_argument("--golden", default=None, metavar="FILE",
                        help="also write per-layer golden vectors of --images to FILE")
    from bincount.model.cli.golden_cli import add_image_arguments

    add_image_arguments(parser)


def run(args):
    from pathlib import Path

    from bincount.model.cli.golden_cli import check_targets, golden_images, write_all
    from bincount.model.export.network_export import export_arrays
    from bincount.model.training.train import load_model

    from bincount.options import refuse_given

    out = Path(args.output or default_output(args.checkpoint))
    if not args.golden:
        refuse_given(args, ("images", "synthetic", "seed", "data_dir"),
                     "applies with --golden FILE only (the images of the golden vectors)")
    check_targets([("-o", out), ("--golden", args.golden)], force=args.force,
                  inputs=[("--checkpoint", args.checkpoint)])
    images = golden_images(args) if args.golden else None     # fail early on bad --images
    model = load_model(args.checkpoint, "--checkpoint")
    arrays = export_arrays(model, source={"checkpoint": Path(args.checkpoint).name})
    golden = None
    if args.golden:
        from bincount.model.export.network_reference import golden as make_golden

        x, idx, labels, source = images
        golden = make_golden(arrays, x, indices=idx, labels=labels, source=source)
    write_all([(out, arrays)] + ([(Path(args.golden), golden)] if golden is not None else []))
    meta = arrays["meta"]
    print(f"wrote {out} ({meta['network']} {meta['variant']}, width {meta['width_mult']:g}, "
          f"{len(meta['layers'])} binary layers, form {meta['form']})"
          + (f" and {args.golden} ({len(golden['logits'])} images)" if golden is not None else ""))
    return 0
