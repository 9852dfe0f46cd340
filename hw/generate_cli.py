"""Emit Verilog and a JSON port manifest for one block.

    bincount generate BLOCK --n N [--out-bits B] [--shift S] [--form F]
                                  [--mul-bits M] [--off-bits O] [-o DIR]

BLOCK is one of xnor_popcount, threshold_compare, baseline_scale, output_lane. Writes
``DIR/<module>.v`` and ``DIR/<module>.json`` (default DIR ``build/verilog/``) and prints their
paths. Bad input gives one error line, exit status 2, and writes nothing.
"""

__all__ = ["add_arguments", "run"]

DEFAULT_OUT_DIR = "build/verilog"

# integer options (dest = block parameter name); parsed in run() so every mistake is one line
_INT_OPTIONS = ("n", "out_bits", "shift", "mul_bits", "off_bits")


def add_arguments(parser):
    parser.add_argument("block", metavar="BLOCK",
                        help="xnor_popcount, threshold_compare, baseline_scale or output_lane")
    parser.add_argument("--n", metavar="N",
                        help="number of XNOR inputs N = k*k*Cin (1..65536), e.g. 576")
    parser.add_argument("--out-bits", dest="out_bits", metavar="B",
                        help="width of the signed output y (2..64, default 16)")
    parser.add_argument("--shift", metavar="S",
                        help="baseline arithmetic right shift (0..40, default 12)")
    parser.add_argument("--form", metavar="F",
                        help="output_lane form: binarized (default) or baseline")
    parser.add_argument("--mul-bits", dest="mul_bits", metavar="M",
                        help="baseline multiplier width (2..48, default 18)")
    parser.add_argument("--off-bits", dest="off_bits", metavar="O",
                        help="baseline offset width (2..96, default 32)")
    parser.add_argument("-o", "--out-dir", dest="out_dir", metavar="DIR", default=DEFAULT_OUT_DIR,
                        help=f"output directory (default {DEFAULT_OUT_DIR}/)")


def _parse_int(option, text):
    from bincount.errors import BincountError
    try:
        return int(text, 10)
    except ValueError:
        raise BincountError(f"--{option.replace('_', '-')} needs an integer, got {text!r}") \
            from None


def run(args):
    from bincount.errors import BincountError
    from bincount.hw.blocks import BLOCKS
    from bincount.hw.emit import emit_block

    if args.block not in BLOCKS:
        raise BincountError(f"unknown block {args.block!r}; valid blocks: {', '.join(BLOCKS)}")
    params = {}
    for param in _INT_OPTIONS:
        text = getattr(args, param)
        if text is not None:
            params[param] = _parse_int(param, text)
    if args.form is not None:
        params["form"] = args.form
    spec = BLOCKS[args.block]
    for param in params:
        if spec.param(param) is None:
            valid = " ".join(f"--{p.name.replace('_', '-')}" for p in spec.params)
            raise BincountError(f"--{param.replace('_', '-')} does not apply to block "
                                f"{args.block!r}; its options are: {valid}")
    if "n" not in params:
        raise BincountError(f"block {args.block!r} needs --n N, the number of XNOR inputs "
                            f"(1..65536), e.g. --n 576")
    for path in emit_block(args.block, args.out_dir, **params):
        print(path)
    return 0
