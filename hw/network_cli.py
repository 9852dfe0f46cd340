"""``bincount generate network``: Verilog and manifest of the whole-network engine.

    bincount generate network --export FILE [--lanes P|P1,P2,P3,P4]
                              [--bits-per-cycle B|B1,B2,B3,B4] [--stem-lanes P0] [-o DIR]
    bincount generate network --export FILE --device D --target-fps F [--clock-mhz MHZ] [-o DIR]

The second form asks the fold planner (:mod:`bincount.hw.fold_plan`) for the knobs, prints the
plan and puts it in the manifest. Writes ``DIR/<module>.v`` and ``DIR/<module>.json`` and
prints their paths; bad input gives one line and writes nothing.
"""

__all__ = ["run_network", "given_knobs", "check_given_knobs", "parse_ints", "NETWORK_OPTIONS"]

#: Options that only ``generate network`` takes.
NETWORK_OPTIONS = ("stem_lanes", "device", "target_fps", "clock_mhz")


def parse_ints(option, text):
    from bincount.errors import BincountError

    parts = text.split(",")
    try:
        values = [int(v, 10) for v in parts]
    except ValueError:
        raise BincountError(f"--{option} needs an integer or 4 comma-separated integers (one "
                            f"per stage), got {text!r}") from None
    if len(values) not in (1, 4):
        raise BincountError(f"--{option} needs 1 or 4 values (one per stage), got "
                            f"{len(values)}")
    return values[0] if len(values) == 1 else values


def _number(option, text):
    from bincount.errors import BincountError

    try:
        v = float(text)
    except ValueError:
        raise BincountError(f"--{option} needs a number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise BincountError(f"--{option} must be a positive number, got {text!r}")
    return v


def given_knobs(args):
    """``{lanes, bits_per_cycle, stem_lanes}`` as given on the command line (``--lanes``,
    ``--bits-per-cycle``: one integer or one per stage; ``--stem-lanes``: one integer), the
    options not given left out; :class:`BincountError` with one line for a malformed value."""
    from bincount.errors import BincountError

    knobs = {}
    if args.lanes is not None:
        knobs["lanes"] = parse_ints("lanes", args.lanes)
    if args.bits_per_cycle is not None:
        knobs["bits_per_cycle"] = parse_ints("bits-per-cycle", args.bits_per_cycle)
    if args.stem_lanes is not None:
        try:
            knobs["stem_lanes"] = int(args.stem_lanes, 10)
        except ValueError:
            raise BincountError(f"--stem-lanes needs one integer, got {args.stem_lanes!r}") \
                from None
    return knobs


#: The options of ``generate network`` and ``build`` for each knob of
#: :func:`~bincount.gateware.network_top.check_knobs`.
KNOB_OPTIONS = {"lanes": "--lanes", "bits_per_cycle": "--bits-per-cycle",
                "stem_lanes": "--stem-lanes"}

#: How the parts' parameter checks name each knob in their messages where that is not the
#: knob's own name as a word (``stem lanes``; a stage's ``lanes`` is not the stem's).
_KNOB_WORDS = {"lanes": r"(?<!stem )(?<!head )\blanes\b", "stem_lanes": r"\bstem lanes\b"}


def option_error(exc, given):
    """``exc`` (a :class:`BincountError` of a parameter check) prefixed with the options
    it is about among ``given`` (``{parameter: (option, value)}``, the options on the command
    line): ``--lanes 3: lanes must be a power of two, got 3``; unchanged when it names none of
    them (an error about the export, or about a parameter left at its default)."""
    import re

    from bincount.errors import BincountError

    text = str(exc)
    named = [f"{option} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
             for p, (option, v) in given.items()
             if re.search(_KNOB_WORDS.get(p, rf"\b{p}\b"), text)]
    return BincountError(f"{' '.join(named)}: {text}") if named else exc


def check_given_knobs(export, knobs, options=KNOB_OPTIONS):
    """``knobs`` (as from :func:`given_knobs`) checked against ``export`` by
    :func:`~bincount.gateware.network_top.check_knobs` before any work; an error about a
    given knob names its option (:func:`option_error`; ``options``: knob -> option)."""
    from bincount.errors import BincountError
    from bincount.gateware.network_top import check_knobs

    try:
        check_knobs(export, **knobs)
    except BincountError as exc:
        raise option_error(exc, {k: (options[k], v) for k, v in knobs.items()}) from None


def run_network(args):
    from bincount.errors import BincountError
    from bincount.fileio import ensure_dir
    from bincount.hw.emit import write_files
    from bincount.model.export.network_file import export_meta, load_export

    for option in ("n", "out_bits", "shift", "mul_bits", "off_bits", "form", "stage", "weights"):
        if getattr(args, option, None) is not None:
            raise BincountError(f"--{option.replace('_', '-')} does not apply to network; its "
                                f"options are: --export --lanes --bits-per-cycle --stem-lanes "
                                f"--device --target-fps --clock-mhz")
    if args.export is None:
        from bincount.model.export.network_file import DEFAULT_EXPORT
        args.export = str(DEFAULT_EXPORT)
    planned = args.device is not None or args.target_fps is not None
    knobs = given_knobs(args)
    if planned and knobs:
        raise BincountError("give either --device D --target-fps F [--clock-mhz MHZ] (planned "
                            "knobs) or --lanes / --bits-per-cycle / --stem-lanes, not both")
    if planned and (args.device is None or args.target_fps is None):
        given, missing = (("--device", "--target-fps") if args.target_fps is None
                          else ("--target-fps", "--device"))
        raise BincountError(f"{given} needs {missing}: the planner folds the network for a "
                            f"frame rate on a device (--device D --target-fps F)")
    if args.clock_mhz is not None and not planned:
        raise BincountError("--clock-mhz needs --device and --target-fps")
    export = load_export(args.export)
    plan = None
    if planned:
        from bincount.hw.fold_plan import format_plan, plan_network

        clock = 100.0 if args.clock_mhz is None else _number("clock-mhz", args.clock_mhz)
        plan = plan_network(export_meta(export), args.device,
                            _number("target-fps", args.target_fps), clock)
        streamed = [p["name"] for p in plan["parts"] if p.get("weights") == "stream"]
        for line in format_plan(plan):
            print(line)
        if streamed:
            raise BincountError(f"the plan streams the weights of {', '.join(streamed)}; the "
                                f"network engine holds every weight on chip, so it is not "
                                f"generated (a lower --target-fps or a larger --device)")
        stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
        knobs = {"lanes": [p["lanes"] for p in stages],
                 "bits_per_cycle": [p["bits_per_cycle"] for p in stages],
                 "stem_lanes": plan["parts"][0]["lanes"]}
    from bincount.hw.network_emit import emit_network
    from bincount.hw.output_dir import check_output_dir

    if plan is None:
        check_given_knobs(export, knobs)        # one line naming the options
    check_output_dir(args.out_dir)              # before the Verilog conversion
    text, info = emit_network(export, plan=plan, **knobs)     # bad knobs: one line, no folder
    ensure_dir(args.out_dir)
    for path in write_files(args.out_dir, text, info):
        print(path)
    return 0
