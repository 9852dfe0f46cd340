"""Where the Yosys and nextpnr runs execute: this machine (default) or a Dask cluster.

Every tool run of the project is a *job*: a module-level function of plain values (the Verilog
text, the script, the tool arguments) that runs the tools in a temporary folder and returns a
dict of plain values (:func:`bincount.hw.synth.synth_job`, :func:`bincount.hw.pnr.pnr_job`).
The callers (``synthesize``, ``fmax_ecp5``) look the result up in the cache first and store it
after, on this machine; only the job itself goes to the executor. So the cache, the progress
lines and the task pool (:mod:`bincount.hw.tasks`: one thread per job in flight) are the same
whichever executor runs the jobs.

- :class:`LocalExecutor`: calls the job in the calling thread; the tools run as processes of
  this machine. ``jobs`` = the cores this process may use.
- :class:`DaskExecutor`: submits the job to a ``dask.distributed`` scheduler (``--scheduler
  tcp://HOST:8786``) and waits for its result; the workers need the same ``bincount`` and tool
  packages installed (a job checks that its worker's Yosys / nextpnr package versions equal
  this machine's, since they are part of the cache key). ``jobs`` = the threads of the
  cluster's workers.

:func:`using` selects the executor for a block of code; :func:`current` is the one in use.
"""

import contextlib
import os
import threading

from bincount.errors import BincountError
from bincount.hw.tools import SynthesisError, terminate_running

__all__ = ["LocalExecutor", "DaskExecutor", "current", "using", "connect", "default_jobs",
           "check_versions"]


def default_jobs():
    """Number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Runs jobs in the calling thread (tool processes on this machine)."""

    name = "local"

    @property
    def jobs(self):
        return default_jobs()

    def describe(self):
        return "this machine"

    def call(self, job, *args):
        return job(*args)

    def cancel(self):
        terminate_running()

    def close(self):
        pass


class DaskExecutor:
    """Runs jobs on the workers of the Dask scheduler at ``address``.

    Raises :class:`BincountError` (one line) when ``dask.distributed`` is not installed or the
    scheduler cannot be reached within ``timeout_s`` seconds."""

    name = "dask"

    def __init__(self, address, timeout_s=5):
        try:
            from dask.distributed import Client
        except ImportError:
            raise BincountError("--scheduler needs dask.distributed, which is not installed; "
                                "pip install 'bincount[dask]' (or drop --scheduler to run "
                                "the tools on this machine)") from None
        self.address = str(address)
        _check_address(self.address)
        try:
            self.client = Client(self.address, timeout=f"{int(timeout_s)}s",
                                 set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BincountError(f"--scheduler {self.address}: no Dask scheduler answered "
                                f"({first}); expected the address of a running "
                                f"dask.distributed scheduler, e.g. tcp://HOST:8786") from None
        self._lock = threading.Lock()
        self._futures = set()

    @property
    def jobs(self):
        threads = sum(self.client.nthreads().values())
        if threads < 1:
            raise BincountError(f"--scheduler {self.address}: the scheduler has no workers; "
                                f"start at least one (dask worker {self.address})")
        return threads

    def describe(self):
        workers = self.client.nthreads()
        return (f"Dask scheduler {self.address} ({len(workers)} workers, "
                f"{sum(workers.values())} threads)")

    def call(self, job, *args):
        # pure=False: a job is a tool run whose result the caller caches itself
        fut = self.client.submit(job, *args, pure=False)
        with self._lock:
            self._futures.add(fut)
        try:
            return fut.result()
        finally:
            with self._lock:
                self._futures.discard(fut)

    def cancel(self):
        """Cancel the jobs waiting or running on the cluster (a tool run already started on
        a worker runs to its end there; its result is dropped)."""
        terminate_running()
        with self._lock:
            futures = list(self._futures)
        if futures:
            self.client.cancel(futures, force=True)

    def close(self):
        self.client.close()


_lock = threading.Lock()
_current = LocalExecutor()


def current():
    """The executor in use (a :class:`LocalExecutor` unless inside :func:`using`)."""
    return _current


@contextlib.contextmanager
def using(executor):
    """Run the jobs started inside the ``with`` block (from any thread) on ``executor``."""
    global _current
    with _lock:
        previous, _current = _current, executor
    try:
        yield executor
    finally:
        with _lock:
            _current = previous


def _check_address(address):
    """A malformed address is refused before a ``Client`` is made: a client that failed to
    connect to one waits out its timeout again when it is collected, and prints a traceback."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, loc = parse_address(address)
        get_backend(scheme)         # the registered ones and those of installed entry points
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(loc)
    except ValueError as exc:
        raise BincountError(f"--scheduler {address}: not a Dask scheduler address ({exc}); "
                            f"expected one such as tcp://HOST:8786") from None


def connect(scheduler):
    """The executor for a ``--scheduler`` value: None gives :class:`LocalExecutor`."""
    return LocalExecutor() if scheduler is None else DaskExecutor(scheduler)


def check_versions(kind, worker, local):
    """Raise when a job ran with tool packages other than this machine's (they are part of
    every cache key, so the result would be stored under the wrong key)."""
    if worker != local:
        raise SynthesisError(f"{kind} ran on a worker with {worker}, this machine has {local}; "
                             f"install the same tool packages on every worker")
