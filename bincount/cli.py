"""Command line: ``bincount VERB ...`` (also ``python -m bincount``).

Each verb lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, amaranth, yosys) happen inside ``run``
so that ``bincount --help`` stays fast.
"""

import argparse
import importlib
import sys

from bincount import __version__
from bincount.errors import BincountError

__all__ = ["main", "VERBS"]

# verb name -> (module, one-line help)
VERBS = {
    "generate": ("bincount.hw.generate_cli", "emit Verilog + JSON port manifest for one block"),
    "ops": ("bincount.model.ops_cli", "post-popcount operation count per layer of a network"),
    "report": ("bincount.hw.report_cli", "synthesise lanes in both forms; write report.md/.json"),
    "export-layer": ("bincount.model.export_cli", "export one calibrated binary conv layer to .npz"),
    "export": ("bincount.model.network_export_cli", "export a trained network checkpoint as integers (.npz)"),
    "golden": ("bincount.model.golden_cli", "per-layer golden vectors of an exported network"),
    "train": ("bincount.model.train_cli", "train a network on CIFAR-10 (resumable checkpoints)"),
    "eval": ("bincount.model.eval_cli", "top-1 / top-5 accuracy of a checkpoint on CIFAR-10"),
    "convert-ptq": ("bincount.model.ptq_cli", "PTQ-binarized counting of a trained baseline"),
    "data": ("bincount.model.data_cli", "fetch the CIFAR-10 binary release (checked, resumable)"),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bincount",
        description="Hardware generator and RTL verification suite for binarized-counting BNNs.")
    parser.add_argument("--version", action="version", version=f"bincount {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (module, help_) in VERBS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=help_, description=(mod.__doc__ or help_).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except BincountError as exc:
        print(f"bincount {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"bincount {args.verb}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bincount {args.verb}: interrupted", file=sys.stderr)
        return 130
