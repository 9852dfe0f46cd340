"""Checked option types shared by the verbs (torch-free, imported by ``bincount --help``).

Every range is checked by argparse before any work starts; a bad value is one line on stderr
(``bincount VERB: error: argument --threads: ...``) and exit status 2.
"""

import argparse
import math

__all__ = ["int_in", "float_in", "SEED_MAX", "THREADS_MAX", "seed", "threads", "refuse_given"]

#: Seeds are unsigned 32-bit integers (every generator bincount seeds accepts them).
SEED_MAX = 2**32 - 1
#: More threads than this is a typo, not a machine.
THREADS_MAX = 1024


def int_in(lo, hi=None):
    """An argparse type: an integer in ``lo..hi`` (``hi`` None: no upper bound)."""
    want = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"

    def parse(text):
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {want}") \
                from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {want}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo, hi, lo_open=False):
    """An argparse type: a finite number in ``lo..hi`` (``lo_open``: greater than ``lo``)."""
    want = f"a number {'>' if lo_open else '>='} {lo:g} and <= {hi:g}"

    def parse(text):
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {want}") \
                from None
        if not math.isfinite(value) or value < lo or (lo_open and value == lo) or value > hi:
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; expected {want}")
        return value

    parse.__name__ = "number"
    return parse


seed = int_in(0, SEED_MAX)
threads = int_in(1, THREADS_MAX)


def refuse_given(args, options, reason):
    """Raise :class:`BincountError` if any of ``options`` (argparse dests) was given (is not
    ``None``): ``--opt <reason>``, e.g. ``reason="applies with --golden only"``."""
    from bincount.errors import BincountError

    for dest in options:
        value = getattr(args, dest, None)
        if value is not None and value is not False:
            raise BincountError(f"--{dest.replace('_', '-')} {reason}")
