"""One pool of tool runs with progress lines, shared by the report and its engine section.

:class:`Progress` prints ``[k/total] label ... 12 s`` as tasks finish and, while nothing
finishes, a heartbeat with the tasks still running; :func:`run_tasks` runs ``(function,
args)`` pairs on a thread pool (each task starts its own tool process, so threads suffice)
and stops the tool processes still running on the first failure or Ctrl-C. Each task's tool
runs go to the executor in use (:mod:`bincount.hw.executor`: this machine or a Dask cluster),
so the same pool, cache and progress lines serve both.
"""

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from bincount.hw import executor
from bincount.hw.executor import default_jobs
from bincount.hw.tools import allow_running

__all__ = ["Progress", "run_tasks", "default_jobs", "HEARTBEAT_S"]

#: Seconds without a finished task before the next "still running" line.
HEARTBEAT_S = 30.0


class Progress:
    """Progress lines on ``stream`` (None: silent) for ``total`` tasks (``total`` may grow)."""

    def __init__(self, total=0, stream=None):
        self.total, self.stream, self.done = total, stream, 0
        self.lock = threading.Lock()
        self.running = {}

    def say(self, text):
        if self.stream is None:
            return
        with self.lock:
            print(text, file=self.stream, flush=True)

    def start(self, label):
        with self.lock:
            self.running[label] = time.monotonic()

    def finish(self, label, seconds, cached, extra=""):
        with self.lock:
            self.running.pop(label, None)
            self.done += 1
            done = self.done
        what = "cached" if cached else f"{seconds:.0f} s"
        self.say(f"[{done}/{self.total}] {label} ... {what}{extra}")

    def heartbeat(self):
        with self.lock:
            now = time.monotonic()
            items = [f"{k} ({now - t:.0f} s)" for k, t in sorted(self.running.items())]
        if items:
            self.say(f"      still running: {', '.join(items)}")


def run_tasks(tasks, jobs, progress, heartbeat_s=None):
    """Run ``tasks`` (``(function, args)`` pairs) on ``jobs`` threads, in order, with
    heartbeat lines on ``progress`` (a :class:`Progress`) while nothing finishes. The first
    failure (or Ctrl-C) stops the Yosys / nextpnr processes still running and is raised."""
    heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
    pool = ThreadPoolExecutor(max_workers=max(1, int(jobs)), thread_name_prefix="synth")
    allow_running()
    try:
        pending = {pool.submit(fn, *args) for fn, args in tasks}
        while pending:
            done, pending = wait(pending, timeout=heartbeat_s, return_when=FIRST_COMPLETED)
            for fut in done:
                fut.result()    # re-raise the first failure
            if not done:
                progress.heartbeat()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        executor.current().cancel()
        pool.shutdown(wait=True)
        allow_running()
        raise
    pool.shutdown(wait=True)
