"""Emit Verilog and a JSON port manifest for one block or one stage engine.

    bincount generate BLOCK --n N [--out-bits B] [--shift S] [--form F]
                                  [--mul-bits M] [--off-bits O] [-o DIR]
    bincount generate stage_engine --export FILE --stage K [--lanes P] [--bits-per-cycle B]
                                  [--weights memory|stream] [-o DIR]
    bincount generate network --export FILE [--lanes P[,P,P,P]] [--bits-per-cycle B[,B,B,B]]
                              [--stem-lanes P0] [--device D --target-fps F [--clock-mhz M]]

BLOCK is one of xnor_popcount, threshold_compare, baseline_scale, output_lane; ``stage_engine``
builds the four binary blocks of stage K of a ``bincount-network`` export (weights and constants
in on-chip memories, form taken from the export; with ``--weights stream`` the weights come in
on one stream input per block instead; docs/engines.md). Writes
``DIR/<module>.v`` and ``DIR/<module>.json`` (default DIR ``build/verilog/``) and prints their
paths. Bad input gives one error line, exit status 2, and writes nothing.
"""

__all__ = ["add_arguments", "run"]

DEFAULT_OUT_DIR = "build/verilog"

# integer options (dest = block parameter name); parsed in run() so every mistake is one line
_INT_OPTIONS = ("n", "out_bits", "shift", "mul_bits", "off_bits")


def add_arguments(parser):
    from bincount.hw.limits import N_HELP

    parser.add_argument("block", metavar="BLOCK",
                        help="xnor_popcount, threshold_compare, baseline_scale, output_lane, "
                             "stage_engine or network")
    parser.add_argument("--n", metavar="N",
                        help=f"number of XNOR inputs N = k*k*Cin ({N_HELP}: the widest lane "
                             f"Amaranth can convert), e.g. 576")
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
    parser.add_argument("--export", metavar="FILE",
                        help="stage_engine, network: the bincount-network export to build from "
                             "(default: the project's trained network, "
                             "networks/reactnet18_w0.25.npz)")
    parser.add_argument("--stage", metavar="K", help="stage_engine: stage 1..4")
    parser.add_argument("--lanes", metavar="P",
                        help="stage_engine: output channels per cycle (power of two; default "
                             "8, or the export's smallest channel count where smaller)")
    parser.add_argument("--bits-per-cycle", dest="bits_per_cycle", metavar="B",
                        help="stage_engine: window bits per lane and cycle (power of two; "
                             "default 64, or the export's smallest Cin where smaller)")
    parser.add_argument("--weights", metavar="W",
                        help="stage_engine: memory (on-chip weight memories, default) or stream "
                             "(a weight stream input per block, for weights too big for the "
                             "device)")
    parser.add_argument("--stem-lanes", dest="stem_lanes", metavar="P0",
                        help="network: lanes of the stem (default: stage 1's)")
    parser.add_argument("--device", metavar="D",
                        help="network: plan the knobs for ecp5-85f, ecp5-45f, xc7a100t or xczu7ev")
    parser.add_argument("--target-fps", dest="target_fps", metavar="F",
                        help="network: images per second the plan must reach")
    parser.add_argument("--clock-mhz", dest="clock_mhz", metavar="MHZ",
                        help="network: clock of the plan (default 100)")
    parser.add_argument("-o", "--out-dir", dest="out_dir", metavar="DIR", default=DEFAULT_OUT_DIR,
                        help=f"output directory (default {DEFAULT_OUT_DIR}/)")


def _parse_int(option, text):
    from bincount.errors import BincountError
    try:
        return int(text, 10)
    except ValueError:
        raise BincountError(f"--{option.replace('_', '-')} needs an integer, got {text!r}") \
            from None


def _as_options(values):
    """``{parameter: (option, value)}`` for :func:`~bincount.hw.network_cli.option_error`."""
    return {k: (f"--{k.replace('_', '-')}", v) for k, v in values.items()}


def _run_stage_engine(args):
    from bincount.errors import BincountError
    from bincount.fileio import ensure_dir
    from bincount.gateware.network_top import default_knobs
    from bincount.gateware.stage_engine import stage_layers
    from bincount.hw.designs import engine_design
    from bincount.hw.emit import write_files
    from bincount.hw.knobs import EngineKnobs
    from bincount.hw.network_cli import option_error
    from bincount.model.export.network_file import load_export

    for option in _INT_OPTIONS + ("form",):
        if getattr(args, option) is not None:
            raise BincountError(f"--{option.replace('_', '-')} does not apply to stage_engine; "
                                f"its options are: --export --stage --lanes --bits-per-cycle "
                                f"--weights")
    if args.stage is None:
        raise BincountError("stage_engine needs --stage K (1..4)")
    if args.export is None:
        from bincount.model.export.network_file import DEFAULT_EXPORT
        args.export = str(DEFAULT_EXPORT)
    given = {"stage": _parse_int("stage", args.stage)}
    for k in ("lanes", "bits_per_cycle"):
        if getattr(args, k) is not None:
            given[k] = _parse_int(k, getattr(args, k))
    stage = given["stage"]
    export = load_export(args.export)
    try:                                            # before the output folder
        layers = stage_layers(export, stage)        # a bad --stage is refused here
        # not given: the whole network's defaults (8 and 64, lowered to fit a narrow export)
        defaults = dict(zip(("lanes", "bits_per_cycle"), default_knobs(export)))
        knobs = EngineKnobs(*(given[k] if k in given else defaults[k][stage - 1]
                              for k in ("lanes", "bits_per_cycle")), args.weights,
                            options={"lanes": "--lanes", "bits_per_cycle": "--bits-per-cycle",
                                     "weights": "--weights"})
        knobs.validate([export], layers)
    except BincountError as exc:                    # named by the options it is about
        raise option_error(exc, _as_options(given)) from None
    ensure_dir(args.out_dir)
    _, text, info = engine_design(export, stage, knobs)
    for path in write_files(args.out_dir, text, info):
        print(path)
    return 0


def run(args):
    from bincount.errors import BincountError
    from bincount.hw.blocks import BLOCKS
    from bincount.hw.emit import emit_block
    from bincount.hw.network_cli import option_error
    from bincount.options import refuse_given

    if args.block == "network":
        from bincount.hw.network_cli import run_network
        return run_network(args)
    from bincount.hw.network_cli import NETWORK_OPTIONS
    for option in NETWORK_OPTIONS:
        if getattr(args, option, None) is not None:
            raise BincountError(f"--{option.replace('_', '-')} applies to network only")
    if args.block == "stage_engine":
        return _run_stage_engine(args)
    refuse_given(args, ("export", "stage", "lanes", "bits_per_cycle", "weights"),
                 "applies to stage_engine only")
    if args.block not in BLOCKS:
        raise BincountError(f"unknown block {args.block!r}; valid blocks: {', '.join(BLOCKS)}, "
                            f"stage_engine, network")
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
    from bincount.hw.limits import MAX_N, N_HELP

    if "n" not in params:
        raise BincountError(f"block {args.block!r} needs --n N, the number of XNOR inputs "
                            f"({N_HELP}), e.g. --n 576")
    if not 1 <= params["n"] <= MAX_N:
        raise BincountError(f"--n {params['n']} is out of range; expected {N_HELP} (the widest "
                            f"lane the Verilog conversion can build)")
    try:
        paths = emit_block(args.block, args.out_dir, **params)
    except BincountError as exc:         # a block's own range check: name the option
        raise option_error(exc, _as_options(params)) from None
    for path in paths:
        print(path)
    return 0
