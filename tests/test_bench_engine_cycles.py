"""``bench/engine_cycles.py``: its knobs (the gateware's defaults, or the report's fold) and the
section it writes; the Verilator runs themselves are the benchmark."""

import sys
from pathlib import Path

import pytest

from bincount.hw.knobs import REPORT_KNOBS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import engine_cycles  # noqa: E402


@pytest.fixture
def bench():
    return engine_cycles


def test_report_fold_takes_the_reports_knobs(bench):
    k = bench.parse(["--report-fold"]).knobs
    assert (k.lanes, k.bits_per_cycle, k.post_lanes) == (
        REPORT_KNOBS["lanes"], REPORT_KNOBS["bits_per_cycle"], REPORT_KNOBS["post_lanes"])
    assert k.stage_bits(4) == REPORT_KNOBS["bits_per_cycle"][3]
    k = bench.parse(["--report-fold", "--post-lanes", "2", "--bits-per-cycle", "32"]).knobs
    assert (k.bits_per_cycle, k.post_lanes) == (32, 2)
    k = bench.parse([]).knobs
    assert k.post_lanes is None


@pytest.mark.parametrize("argv, message", [
    (["--bits-per-cycle", "64,64"], "--bits-per-cycle needs 1 or 4 values (one per stage)"),
    (["--post-lanes", "0"], "--post-lanes must be a positive integer, got 0"),
    (["--post-lanes", "3"], "--post-lanes 3 with --lanes 8: layer stage1.conv1: post_lanes "
                            "must divide lanes = 8"),
    (["--bits-per-cycle", "x"], "--bits-per-cycle needs an integer or 4 comma-separated "
                                "integers (one per stage), got 'x'"),
    (["--lanes", "3"], "--lanes 3: expected a power of two up to 64"),
])
def test_bad_knobs_are_one_line(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        bench.parse(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_section_of_whole_stages_only(bench):
    args = bench.parse(["--report-fold", "--whole-stages-only", "--stages", "4"])
    args.argv = ["--report-fold", "--whole-stages-only", "--stages", "4"]
    rows = [{"stage": 4, "form": "binarized", "image_latency": 90000, "interval": 33000,
             "ideal_cycles": [32768, 32768, 32768, 32768]}]
    text = bench.section(rows, [], args)
    assert "`python bench/engine_cycles.py --report-fold --whole-stages-only --stages 4`" in text
    assert "B = 64, 64, 64, 128 (stages 1-4) bits per cycle, Q = 1 post-popcount" in text
    assert "| 4 | binarized | 90,000 | 33,000 | 1.007 |" in text
    assert "Largest interval ratio measured: 1.007" in text and "(alone)" not in text
