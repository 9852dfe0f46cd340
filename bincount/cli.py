"""Command line: ``bincount VERB ...`` (also ``python -m bincount``).

Each verb lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, amaranth, yosys) happen inside ``run``
so that ``bincount --help`` stays fast.

Every error path ends here, as one line on stderr:

* bad input (a :class:`~bincount.errors.BincountError`, an ``OSError``, or an argparse
  error): ``bincount VERB: error: ...``, exit status 2;
* SIGINT (Ctrl-C) or SIGTERM (``kill``, ``timeout``, schedulers):
  ``bincount VERB: interrupted by SIGINT|SIGTERM``, exit status 130 or 143. Both unwind the
  stack, so the atomic writers remove their temporary files and a verb that writes several
  files removes the ones it created.
"""

import argparse
import importlib
import signal
import sys
import threading
import warnings

from bincount import __version__
from bincount.errors import BincountError, Terminated

__all__ = ["main", "VERBS", "build_parser"]

# verb name -> (module, one-line help)
VERBS = {
    "generate": ("bincount.hw.generate_cli", "emit Verilog + JSON port manifest for one block"),
    "ops": ("bincount.model.cli.ops_cli", "post-popcount operation count per layer of a network"),
    "build": ("bincount.hw.build_cli", "a board design of a network: bitstream or vendor project"),
    "report": ("bincount.hw.report_cli", "synthesise lanes in both forms; write report.md/.json"),
    "export-layer": ("bincount.model.cli.export_cli", "export one calibrated binary conv layer to .npz"),
    "export": ("bincount.model.cli.network_export_cli", "export a trained network checkpoint as integers (.npz)"),
    "golden": ("bincount.model.cli.golden_cli", "per-layer golden vectors of an exported network"),
    "train": ("bincount.model.cli.train_cli", "train a network on CIFAR-10 (resumable checkpoints)"),
    "eval": ("bincount.model.cli.eval_cli", "top-1 / top-5 accuracy of a checkpoint on CIFAR-10"),
    "convert-ptq": ("bincount.model.cli.ptq_cli", "PTQ-binarized counting of a trained baseline"),
    "data": ("bincount.model.cli.data_cli", "fetch the CIFAR-10 binary release (checked, resumable)"),
    "infer": ("bincount.infer_cli", "classify images on a board over its serial port"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as one line: ``PROG: error: MESSAGE; see 'PROG --help'``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; "
                     f"see '{self.prog} --help'\n")


def build_parser():
    parser = OneLineParser(
        prog="bincount",
        description="Hardware generator and RTL verification suite for binarized-counting BNNs.")
    parser.add_argument("--version", action="version", version=f"bincount {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineParser)
    sub.required = True
    for verb, (module, help_) in VERBS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=help_, description=(mod.__doc__ or help_).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(_module=mod, _parser=p)
    return parser


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)     # a second one must not cut the clean-up
    raise Terminated()


def _os_error_line(exc):
    where = f"{exc.filename!r}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args, extra = parser.parse_known_args(argv)
    if extra:       # named by the verb's parser, which lists the verb's options
        verb_at = argv.index(args.verb) if args.verb in argv else 0
        before = [e for e in extra if e in argv[:verb_at]]
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}"
                           + (f" ({' '.join(before)} given before the verb; options go after "
                              f"'bincount {args.verb}')" if before else ""))
    verb = f"bincount {args.verb}"
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            return int(args._module.run(args) or 0)
        except BaseException:
            # the components a failed verb had built are never elaborated; Amaranth's
            # "created but never used" warnings would add lines to the one-line error
            warnings.filterwarnings("ignore", message=r".* created but never used$")
            raise
    except BincountError as exc:
        print(f"{verb}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{verb}: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{verb}: error: out of memory; choose smaller sizes", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{verb}: interrupted by SIGINT", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{verb}: interrupted by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
