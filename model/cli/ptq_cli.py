"""Convert a trained baseline checkpoint to PTQ-binarized counting (no retraining).

Every binary convolution of the baseline becomes ``BN(b * scale_c * N)`` with
``b = +1 if d >= alpha_c else -1`` (``bincount.model.nets.networks.convert_to_ptq``); weights, BN
and thresholds are kept. The result is a checkpoint of variant ``ptq`` for ``bincount eval``
and the exporter, written atomically with its ``.json`` summary (as ``bincount train`` writes
one). Outputs that exist are refused unless ``--force``; ``-o`` must differ from
``--checkpoint``.
"""

__all__ = ["add_arguments", "run", "convert_checkpoint"]


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, metavar="BASE",
                        help="trained baseline checkpoint (from 'bincount train')")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="checkpoint to write (atomically), with OUT's .json summary; "
                             "must differ from --checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT (and its .json) if they exist")


def convert_checkpoint(ckpt, source=""):
    """The checkpoint dict of the PTQ conversion of baseline checkpoint ``ckpt``."""
    from bincount.errors import BincountError
    from bincount.model.training import train as tr

    if ckpt.get("variant") != "baseline":
        raise BincountError(f"PTQ converts a trained baseline; {source!r} holds the "
                            f"{ckpt.get('variant')!r} variant")
    if not ckpt.get("binary_weights", True):
        raise BincountError(f"{source!r} stopped in step 1 of the two-step schedule (real "
                            f"weights); finish its training first")
    model = tr.model_from_checkpoint(ckpt, "cpu", where=f"--checkpoint {source!r}")
    ptq = tr.convert_model_to_ptq(model)
    out = {k: ckpt[k] for k in ("format", "version", "network", "width_mult", "flags", "config",
                                "epoch", "metrics", "wall_s", "data") if k in ckpt}
    if hasattr(ptq, "config"):
        out["network_config"] = tr._plain(ptq.config)
    out.update({"variant": "ptq", "phase": "ptq", "binary_weights": True, "done": True,
                "converted_from": str(source),
                "model": {k: v.detach().cpu() for k, v in ptq.state_dict().items()}})
    return out


def run(args):
    import json
    from pathlib import Path

    from bincount.errors import BincountError
    from bincount.fileio import atomic_write_all, check_outputs, file_path, output_lock
    from bincount.model.training import train as tr

    out = file_path("-o", args.output, "build/train/ptq.pt")
    file_path("--checkpoint", args.checkpoint, "build/train/baseline.pt")
    if out.suffix == ".json":
        raise BincountError(f"-o {str(out)!r} ends in .json, the suffix of its summary file; "
                            f"expected a name such as ptq.pt")
    summary = out.with_suffix(".json")
    inputs = [("--checkpoint", args.checkpoint),
              ("--checkpoint's summary", Path(args.checkpoint).with_suffix(".json"))]
    check_outputs([("-o", out), ("-o's summary", summary)], force=args.force, inputs=inputs)
    with output_lock(out, "-o"):
        ckpt = tr.load_checkpoint(args.checkpoint, "--checkpoint")
        result = convert_checkpoint(ckpt, args.checkpoint)
        info = {k: tr._plain(result[k]) for k in (
            "network", "variant", "width_mult", "flags", "config", "epoch", "done", "wall_s",
            "data", "metrics", "converted_from") if k in result}
        # both or neither; a failed write leaves an earlier pair as it was
        atomic_write_all({out: tr.checkpoint_bytes(result),
                          summary: json.dumps(info, indent=2) + "\n"})
    print(f"wrote {out}: {result['network']} ptq (w{result['width_mult']:g}) converted from "
          f"{args.checkpoint}, not retrained")
    return 0
