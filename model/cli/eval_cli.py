"""Evaluate a checkpoint on CIFAR-10: top-1 and top-5 accuracy (and mean cross-entropy).

``--limit N`` evaluates a class-balanced subset of N images (the same subset every time).
"""

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    from bincount.options import THREADS_MAX, int_in, threads

    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="checkpoint from 'bincount train' or 'bincount convert-ptq'")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="split to evaluate (default: test)")
    parser.add_argument("--limit", type=int_in(1), default=None, metavar="N",
                        help="evaluate a class-balanced subset of N images (default: all)")
    parser.add_argument("--batch-size", type=int_in(1, 10000), default=500,
                        help="batch size, 1..10000 (default: 500)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto (default): CUDA when present, else the CPU")
    parser.add_argument("--threads", type=threads, default=None,
                        help=f"torch CPU threads, 1..{THREADS_MAX} (default: torch's choice)")
    parser.add_argument("--data-dir", default=None,
                        help="CIFAR-10 folder (default: $BINCOUNT_CIFAR_DIR, data/cifar10-jpeg, "
                             "../shared/data/cifar10-jpeg)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    import json
    import time

    import torch

    from bincount.model.data.cifar import find_source
    from bincount.model.training.evaluate import eval_split
    from bincount.model.training.train import load_checkpoint, model_from_checkpoint, resolve_device

    ckpt = load_checkpoint(args.checkpoint, "--checkpoint")
    src = find_source(args.split, args.data_dir)
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = model_from_checkpoint(ckpt, device, where=f"--checkpoint {args.checkpoint!r}")
    t0 = time.monotonic()
    res = eval_split(model, args.split, args.limit, args.batch_size, device, args.data_dir,
                     progress=not args.quiet)
    res.update({"seconds": time.monotonic() - t0, "checkpoint": str(args.checkpoint),
                "network": ckpt["network"], "variant": ckpt["variant"],
                "width_mult": ckpt["width_mult"], "epoch": ckpt.get("epoch"),
                "split": args.split, "data": src.describe()})
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['network']} {res['variant']} w{res['width_mult']:g} "
              f"(epoch {res['epoch']}): top-1 {res['top1']:.2f}%  top-5 {res['top5']:.2f}%  "
              f"loss {res['loss']:.4f}  on {res['images']} {args.split} images of "
              f"{res['data']}, {res['seconds']:.0f} s")
    return 0
