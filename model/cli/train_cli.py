"""Train ReActNet-18 / Bi-Real-Net-18 on CIFAR-10 (Adam + cosine LR, resumable checkpoints).

Writes ``--checkpoint`` atomically after every epoch (plus a ``.json`` with the settings and
per-epoch metrics); ``--resume`` continues a stopped run exactly. Knowledge distillation is not
part of this recipe (plain cross-entropy).
"""

__all__ = ["add_arguments", "run", "parse_flags"]


def _value(text):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_flags(items):
    """``["shortcut=concat", "alpha_init=2"]`` -> ``{"shortcut": "concat", "alpha_init": 2}``."""
    from bincount.errors import BincountError

    flags = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BincountError(f"--flag {item!r}: expected KEY=VALUE (e.g. shortcut=concat)")
        flags[key.strip().replace("-", "_")] = _value(value.strip())
    return flags


def add_arguments(parser):
    from bincount.model.training.train_config import DEFAULTS, LIMITS, NETWORKS, SCHEDULES
    from bincount.options import SEED_MAX, THREADS_MAX, float_in, int_in, seed, threads

    d, L = DEFAULTS, LIMITS
    parser.add_argument("--network", choices=NETWORKS, default=None,
                        help=f"network (default: {d['network']})")
    parser.add_argument("--variant", default=None,
                        help=f"variant: baseline, simple_qat, qat_cn_plus_alpha, "
                             f"qat_cnk2_plus_alpha, qat_cn_times_alpha, qat_cnk2_times_alpha, "
                             f"qat_minmax (default: {d['variant']}; ptq comes from "
                             f"'bincount convert-ptq')")
    parser.add_argument("--width-mult", type=float_in(0, L["width_mult"], lo_open=True),
                        default=None,
                        help=f"channel width multiplier, > 0 and <= {L['width_mult']:g} "
                             f"(default: {d['width_mult']:g})")
    parser.add_argument("--flag", action="append", metavar="KEY=VALUE",
                        help="network flag, repeatable: pad_value=1|-1|0, shortcut=real|concat, "
                             "slopes=trained|pow2, division_alpha=learned|fixed|threshold, "
                             "alpha_init=X, count_bn=after|none, fixed_point=true|false "
                             "(round where the integer export rounds)")
    parser.add_argument("--epochs", type=int_in(1, L["epochs"]), default=None,
                        help=f"epochs, 1..{L['epochs']} (default: {d['epochs']})")
    parser.add_argument("--batch-size", type=int_in(1, L["batch_size"]), default=None,
                        help=f"batch size, 1..{L['batch_size']} (default: {d['batch_size']})")
    parser.add_argument("--lr", type=float_in(0, L["lr"], lo_open=True), default=None,
                        help=f"peak Adam learning rate, > 0 and <= {L['lr']:g} "
                             f"(default: {d['lr']:g})")
    parser.add_argument("--weight-decay", type=float_in(0, L["weight_decay"]), default=None,
                        help=f"weight decay of conv/FC weights (default: {d['weight_decay']:g}; "
                             f"0 in step 2 of two-step)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=None,
                        help="cosine: one phase, binary weights and activations; two-step: "
                             "ReActNet's step 1 (real weights) then step 2 (binary weights), "
                             "half the epochs each (default: cosine)")
    parser.add_argument("--train-limit", type=int_in(1), default=None, metavar="N",
                        help="train on a class-balanced subset of N images (drawn from --seed)")
    parser.add_argument("--eval-limit", type=int_in(1), default=None, metavar="N",
                        help="evaluate each epoch on a class-balanced subset of N test images "
                             "(default: all 10,000)")
    parser.add_argument("--seed", type=seed, default=None,
                        help=f"seed, 0..{SEED_MAX} (default: {d['seed']})")
    parser.add_argument("--from-baseline", default=None, metavar="CKPT",
                        help="initialise all weights from a trained checkpoint (e.g. QAT "
                             "fine-tuning of a baseline)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="checkpoint file (default: "
                             "build/runs/<network>_<variant>_w<W>/checkpoint.pt)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --checkpoint (its settings are kept)")
    parser.add_argument("--force", action="store_true",
                        help="start a new run even if --checkpoint exists (it is replaced)")
    parser.add_argument("--stop-after", type=int_in(1), default=None, metavar="E",
                        help="stop after E epochs of this invocation (continue with --resume)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto (default): CUDA when present, else the CPU")
    parser.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto",
                        help="mixed precision of the real convs and the FC on CUDA: auto "
                             "(default: bf16 on CUDA, off on the CPU), off, bf16, fp16 (with "
                             "gradient scaling); binary convs always run in float32")
    parser.add_argument("--compile", action="store_true",
                        help="run the training step through torch.compile (about 1.5x faster "
                             "on the CPU after a first step that compiles for a minute or two; "
                             "results equal up to float rounding)")
    parser.add_argument("--threads", type=threads, default=None,
                        help=f"torch CPU threads, 1..{THREADS_MAX} (default: torch's choice)")
    parser.add_argument("--data-dir", default=None,
                        help="CIFAR-10 folder: JPEG copy (train.tar.gz, test.tar.gz), image "
                             "folders or the binary release (default: $BINCOUNT_CIFAR_DIR, "
                             "data/cifar10-jpeg, ../shared/data/cifar10-jpeg)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    from pathlib import Path

    from bincount.errors import BincountError
    from bincount.model.training import train as tr

    given = {"network": args.network, "variant": args.variant, "width_mult": args.width_mult,
             "flags": parse_flags(args.flag) if args.flag else None, "epochs": args.epochs,
             "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
             "schedule": args.schedule, "train_limit": args.train_limit,
             "eval_limit": args.eval_limit, "seed": args.seed,
             "from_baseline": args.from_baseline}
    if args.resume and args.force:
        raise BincountError("--resume and --force exclude each other")
    checkpoint = args.checkpoint
    if checkpoint is None:
        if args.resume:
            raise BincountError("--resume needs --checkpoint PATH")
        cfg = tr.resolve_config(given)
        checkpoint = (Path("build") / "runs" /
                      f"{cfg['network']}_{cfg['variant']}_w{cfg['width_mult']:g}" /
                      "checkpoint.pt")
    ckpt = tr.train(given, checkpoint, resume=args.resume, force=args.force, device=args.device,
                    threads=args.threads, data_dir=args.data_dir, stop_after=args.stop_after,
                    progress=not args.quiet, amp=args.amp, compiled=args.compile)
    print(tr.summary(ckpt))
    return 0
