"""The critical path of a stage engine on ECP5, as nextpnr reports it.

Generates the stage engine (or a run of its layers) from the engine-golden network, wraps it in
the registered-I/O harness of ``bincount report``, runs Yosys ``synth_ecp5``, moves the
registers after block-RAM reads into the RAMs' output registers (``hw/ecp5_bram_outreg.py``)
and places and routes it with nextpnr-ecp5 (LFE5U-85F, CABGA381, ``--seed``), exactly as the
report's Fmax flow does. Prints the achieved Fmax and the critical path, one line per step:
type (clock-to-out, routing, logic, setup), delay and running total in ns, and the cells.
The work folder (netlist, logs, ``report.json``) is kept under ``build/critical_path/``.

    python bench/critical_path.py --stage 1 [--form binarized] [--layers 0 1] [--seed 1]
                                  [--weights memory|stream]

Takes 2-3 minutes for one block and 8-18 minutes for a whole stage on one core.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", type=int, choices=[1, 2, 3, 4], required=True)
    p.add_argument("--form", choices=["binarized", "baseline"], default="binarized")
    p.add_argument("--layers", type=int, nargs="+", default=None, metavar="I",
                   help="indices (0-3) of consecutive layers of the stage; default all four")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--weights", choices=["memory", "stream"], default="memory",
                   help="on-chip weight memories (default) or a weight stream per block")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    from bincount.errors import BincountError
    from bincount.gateware.stage_engine import stage_layers
    from bincount.hw.ecp5_bram_outreg import absorb_output_registers
    from bincount.hw.engine_emit import emit_stage
    from bincount.hw.pnr import WRAPPER_TOP, critical_path, ecp5_flow, register_io_wrapper
    from bincount.hw.tools import run_nextpnr_ecp5, run_yosys
    from bincount.model.export.engine_golden import engine_golden

    export, _ = engine_golden(args.form, seed=0)
    names = stage_layers(export, args.stage)
    if args.layers is not None and any(not 0 <= i < len(names) for i in args.layers):
        raise SystemExit(f"error: --layers must be indices 0..{len(names) - 1}, "
                         f"got {args.layers}")
    layers = None if args.layers is None else [names[i] for i in args.layers]
    try:
        text, manifest = emit_stage(export, args.stage, layers=layers, weights=args.weights)
    except BincountError as exc:
        raise SystemExit(f"error: {exc}")
    top = manifest["module"]
    work = ROOT / "build" / "critical_path" / f"{top}_seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.v").write_text(text + "\n" + register_io_wrapper(text, top))
    script, pnr = ecp5_flow(WRAPPER_TOP, seed=args.seed)      # the report's Fmax flow
    (work / "synth.ys").write_text(script)
    t0 = time.monotonic()
    print(f"{top}: synth_ecp5 ...", flush=True)
    if run_yosys(["-q", "-l", "yosys.log", "-s", "synth.ys"], str(work)).returncode != 0:
        raise SystemExit(f"error: Yosys failed, see {work / 'yosys.log'}")
    net = work / "netlist.json"
    netlist, absorbed = absorb_output_registers(net.read_text(), WRAPPER_TOP)
    net.write_text(netlist)
    print(f"  {time.monotonic() - t0:.0f} s; {absorbed} registers moved into block-RAM output "
          f"registers; nextpnr-ecp5 ...", flush=True)
    proc = run_nextpnr_ecp5(pnr, str(work))
    if proc.returncode != 0 or not (work / "report.json").exists():
        raise SystemExit(f"error: nextpnr failed, see {work / 'nextpnr.log'}")
    report = json.loads((work / "report.json").read_text())
    for clk, v in report.get("fmax", {}).items():
        print(f"  {time.monotonic() - t0:.0f} s; Fmax {clk}: {v['achieved']:.2f} MHz")
    cp = critical_path(report)
    if cp is not None:
        print(f"critical path {cp['from']} -> {cp['to']}:")
        for kind, delay, total, src, dst in cp["steps"]:
            print(f"  {kind:9s} {delay:6.3f} {total:7.3f}  {src} -> {dst}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
