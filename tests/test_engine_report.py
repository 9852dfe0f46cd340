"""``bincount report --engines`` on tiny one-block stages (the full-size engines take tens of
minutes to synthesise; the same code builds them): resources per form, Fmax, cycles, images
per second, the plot, and bad knobs refused before any synthesis."""

import argparse
import os
import sys
from pathlib import Path

import pytest

from bincount.cli import main
from bincount.errors import BincountError
from bincount.hw import engine_report
from bincount.hw.designs import engine_design
from bincount.hw.knobs import EngineKnobs
from bincount.hw.measured_cycles import engine_cycles, record_engine_cycles
from bincount.hw.report import build_report, write_report

sys.path.insert(0, str(Path(__file__).parent))
from engine_cases import tiny_export  # noqa: E402


def _tiny_export(form):
    return tiny_export(8, 8, 1, 4, form=form, rprelu="pow2" if form == "binarized" else "trained")


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(tmp_path / "cache"))

    def exports(paths, forms, progress):
        return {f: (_tiny_export(f), f"tiny {f} layer") for f in forms}
    monkeypatch.setattr(engine_report, "_exports", exports)
    return tmp_path


def test_engine_section_resources_fmax_and_plot(tiny):
    # a measurement recorded for the binarized engine at these knobs (as bench/engine_cycles.py
    # records one), none for the baseline engine
    _, _, manifest = engine_design(_tiny_export("binarized"), 1, EngineKnobs(4, 8),
                                   cache_dir=tiny / "cache" / "verilog")
    record_engine_cycles(manifest, {"interval": 300, "image_latency": 400})
    rep = build_report("xc7", [9], jobs=2, progress=None,
                       engines={"stages": [1], "lanes": 4, "bits_per_cycle": 8})
    rows = {r["form"]: r for r in rep["engines"]["rows"]}
    b, m = rows["binarized"], rows["baseline"]
    assert b["dsp"] == 0 and m["dsp"] >= 4          # a multiply per lane (scale, slope)
    assert (b["multipliers"], m["multipliers"]) == (0, 2 * 4)
    # one BN multiply per output element: 4 x 4 pixels x 8 channels
    assert b["baseline_multiplies_per_image"] == m["baseline_multiplies_per_image"] == 4 * 4 * 8
    assert b["lut"] > 0 and b["ff"] > 0
    assert b["ideal_cycles"] == 4 * 4 * 8 * 72 // (4 * 8)
    assert b["cycles_per_image"] == 300 and b["measured_interval"] == 300
    assert m["cycles_per_image"] == m["ideal_cycles"] and m["measured_interval"] is None
    for r in (b, m):
        assert r["fmax_mhz"] > 50
        assert r["images_per_s"] == round(r["fmax_mhz"] * 1e6 / r["cycles_per_image"], 1)
    write_report(rep, tiny / "out")
    assert sorted(os.listdir(tiny / "out")) == ["engines.png", "report.json", "report.md"]
    assert (tiny / "out" / "engines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tiny / "out" / "report.md").read_text()
    assert "## Stage engines" in md and "nextpnr" in md and "(ideal)" in md
    assert "### Binarized against baseline" in md and "`--target xc7-nodsp` shows" in md
    assert (f"| 1 | 128 | 8 | {b['lut']:,} | {m['lut']:,} | 0 | {m['dsp']} | "
            f"{m['lut'] - b['lut']:,} | {m['lut'] / b['lut']:.2f} |") in md


def test_engine_breakdown_parts_sum_to_the_engine(tiny):
    rep = build_report("xc7", [9], jobs=2, progress=None,
                       engines={"stages": [1], "lanes": 4, "bits_per_cycle": 8, "fmax": False,
                                "breakdown": True})
    assert rep["engines"]["breakdown"] is True
    rows = {r["form"]: r for r in rep["engines"]["rows"]}
    for form, r in rows.items():
        parts = r["parts"]
        assert list(parts) == list(engine_report.ENGINE_PARTS)
        for k in ("lut", "ff", "dsp", "bram"):    # every cell lands in exactly one part
            assert sum(p[k] for p in parts.values()) == r[k], (form, k)
        assert parts["popcount"]["lut"] > 0 and parts["accumulators"]["ff"] > 0
        assert parts["window"]["lut"] + parts["window"]["bram"] > 0
    b, m = rows["binarized"]["parts"], rows["baseline"]["parts"]
    assert b["conv"]["dsp"] == 0 and m["conv"]["dsp"] >= 4        # the BN multiply per lane
    assert b["rprelu"]["dsp"] == 0 and m["rprelu"]["dsp"] >= 4      # trained slopes multiply
    write_report(rep, tiny / "out")
    md = (tiny / "out" / "report.md").read_text()
    assert "### Where the LUTs go" in md and "XNOR-popcount trees" in md


def test_engine_part_of_and_keep():
    top = "bincount_stage1_binarized_x"
    assert engine_report.engine_part_of(f"{top}.block0.lanes.popcount3", top) == "popcount"
    assert engine_report.engine_part_of(f"{top}.block3.lanes", top) == "accumulators"
    assert engine_report.engine_part_of(f"{top}.block1.window.bits_buf.ram", top) == "window"
    assert engine_report.engine_part_of(f"{top}.block2.weights_tap8", top) == "weights"
    assert engine_report.engine_part_of(f"{top}.block1", top) == "glue"
    assert engine_report.engine_part_of(top, top) == "glue"
    text = "".join(f"module \\{top}{m} (\n" for m in
                   ("", ".block0", ".block0.lanes", ".block0.lanes.popcount0",
                    ".block0.window", ".block0.window.bits_buf"))
    assert engine_report.engine_keep(text, top) == [
        f"{top}.block0.lanes", f"{top}.block0.lanes.popcount0", f"{top}.block0.window"]


@pytest.mark.parametrize("argv, message", [
    (["--engine-lanes", "3"], "--engine-lanes 3: expected a power of two"),
    (["--engine-bits-per-cycle", "128"], "--engine-bits-per-cycle 128: expected a power of two "
                                         "up to 64"),
    (["--engine-stages", "2", "3", "--engine-bits-per-cycle", "128"],
     "--engine-bits-per-cycle 128: expected a power of two up to 64"),
    (["--engine-stages", "3", "4", "--engine-bits-per-cycle", "256"],
     "--engine-bits-per-cycle 256: expected a power of two up to 128"),
    (["--engine-bits-per-cycle", "64,64,128"], "--engine-bits-per-cycle needs 1 or 4 values"),
    (["--engine-bits-per-cycle", "64,x,64,128"],
     "--engine-bits-per-cycle needs an integer or 4 comma-separated integers"),
    (["--engine-stages", "2", "4", "--engine-bits-per-cycle", "64,128,64,128"],
     "--engine-bits-per-cycle 128 for stage 2: expected a power of two up to 64"),
    (["--engine-lanes", "16"], "--engine-post-lanes 1 with --engine-lanes 16: layer "
                               "stage1.conv1: post_lanes = 1 takes lanes / post_lanes = 16 "
                               "cycles per channel group, not fewer than its F = 9 folds; "
                               "expected post_lanes >= 2"),
    (["--engine-lanes", "16", "--engine-post-lanes", "3"],
     "--engine-post-lanes 3 with --engine-lanes 16: layer stage1.conv1: post_lanes must "
     "divide lanes = 16"),
    (["--engine-export", "missing.npz"], "missing.npz"),
    (["--engine-seeds", "2", "2"], "--engine-seeds 2 2: a value is given twice"),
    (["--engine-seeds", "1", "--engine-no-fmax"], "--engine-seeds does not apply with"),
])
def test_bad_engine_options_fail_before_synthesis(tmp_path, capsys, argv, message):
    out = tmp_path / "rep"
    assert main(["report", "--widths", "9", "-o", str(out), "--engines", *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and "[1/" not in err
    assert not out.exists() or not os.listdir(out)


def test_bits_per_cycle_is_checked_against_the_stages_built():
    """B must divide the Cin of the layers built: 128 fits stages 3 and 4 (Cin >= 128)."""
    from bincount.hw.report_cli import _engines

    assert [engine_report.default_cin_limit([s]) for s in (1, 2, 3, 4)] == [64, 64, 128, 256]
    assert engine_report.default_cin_limit([4, 3]) == 128

    args = argparse.Namespace(engine_stages=[4, 3], engine_forms=None, engine_seeds=None,
                              engine_no_fmax=True, engine_lanes=None,
                              engine_bits_per_cycle="128", engine_post_lanes=None,
                              engine_weight_ram="auto", engine_constant_ram="auto",
                              engine_export=None, engine_breakdown=False)
    kw = _engines(args)
    assert kw["stages"] == [3, 4] and kw["knobs"].bits_per_cycle == 128
    # B = 256 at stage 4: split weights, F = 8 folds, so 8 lanes need Q >= 2 (P/Q < F)
    four = dict(vars(args), engine_stages=[4], engine_bits_per_cycle="256")
    with pytest.raises(BincountError, match="--engine-post-lanes 1 with --engine-lanes 8: "
                                            "layer stage4.conv1: post_lanes = 1 takes lanes / "
                                            "post_lanes = 8 cycles per channel group, not "
                                            "fewer than its F = 8 folds"):
        _engines(argparse.Namespace(**four))
    assert _engines(argparse.Namespace(**dict(four, engine_post_lanes=2)))["knobs"] \
        .bits_per_cycle == 256
    # one B per stage: each stage's against its own Cin (stage 1's 256 is never built)
    k = _engines(argparse.Namespace(**dict(vars(args), engine_bits_per_cycle="256,64,64,128"))
                 )["knobs"]
    assert k.bits_per_cycle == (256, 64, 64, 128)
    assert (k.stage_bits(3), k.for_stage(4).bits_per_cycle) == (64, 128)


def test_one_bits_per_cycle_per_stage_reaches_each_engine(tiny):
    """A tuple of four B builds each stage with its own, and report.md names them."""
    knobs = EngineKnobs(4, (8, 16, 16, 16))
    _, _, manifest = engine_design(_tiny_export("binarized"), 1, knobs)
    assert manifest["parameters"]["bits_per_cycle"] == 8
    sec = engine_report.build_engine_section("xc7", knobs=knobs, stages=(1,),
                                             forms=("binarized",), fmax=False)
    assert sec["bits_per_cycle"] == [8, 16, 16, 16] and sec["rows"][0]["bits_per_cycle"] == 8
    assert "B = 8 (stage 1) window bits" in engine_report.engine_markdown(sec, "xc7")
    sec["rows"].append(dict(sec["rows"][0], stage=3))
    assert "B = 8, 16 (stages 1, 3) window bits" in engine_report.engine_markdown(sec, "xc7")


@pytest.mark.parametrize("option", ["--engine-breakdown", "--engine-no-fmax",
                                    "--engine-seeds 1 2", "--engine-forms binarized",
                                    "--engine-post-lanes 1", "--engine-weight-ram block",
                                    "--engine-constant-ram block"])
def test_engine_options_need_engines(tmp_path, capsys, option):
    out = tmp_path / "rep"
    assert main(["report", "--widths", "9", "-o", str(out), *option.split()]) != 0
    option = option.split()[0]
    err = capsys.readouterr().err
    assert f"{option} applies with --engines only" in err and "[1/" not in err
    assert not out.exists()


def test_measured_cycles_are_keyed_by_shape_and_knobs_not_values(tmp_path):
    knobs = EngineKnobs(4, 8)
    _, _, a = engine_design(_tiny_export("binarized"), 1, knobs)
    _, _, b = engine_design(tiny_export(8, 8, 1, 4, seed=5), 1, knobs)       # other values
    _, _, c = engine_design(_tiny_export("binarized"), 1, EngineKnobs(8, 8))  # other lanes
    _, _, d = engine_design(_tiny_export("binarized"), 1, knobs, taps=True)  # as simulated
    record_engine_cycles(d, {"interval": 300, "image_latency": 400}, tmp_path)
    assert a["module"] != b["module"]
    assert engine_cycles(a, tmp_path)["interval"] == 300
    assert engine_cycles(b, tmp_path)["interval"] == 300
    assert engine_cycles(c, tmp_path) is None
    # shared post-popcount units: other knobs (the latency differs), a measurement of its own
    _, _, e = engine_design(_tiny_export("binarized"), 1, EngineKnobs(4, 8, post_lanes=1))
    assert engine_cycles(e, tmp_path) is None
    assert engine_cycles(a, tmp_path / "none") is None


def test_engine_report_reads_nothing_that_bench_writes():
    import inspect
    text = inspect.getsource(engine_report)
    assert "bench/engine_cycles.json" not in text and "build/bench" not in text
    assert '"bench"' not in text


def test_engine_whose_weights_exceed_the_block_ram_is_not_placed():
    # ReActNet-18 stage 4 (256 -> 512, then 3 x 512 -> 512) against stage 3 on an LFE5U-85F
    stage4 = {"blocks": [{"n": 9 * 256, "cout": 512}] + [{"n": 9 * 512, "cout": 512}] * 3}
    stage3 = {"blocks": [{"n": 9 * 128, "cout": 256}] + [{"n": 9 * 256, "cout": 256}] * 3}
    why = engine_report._weights_exceed_bram(stage4, "85k")
    assert why.startswith("does not fit LFE5U-85F: the weights alone are 8,257,536 bits")
    assert "208 block RAMs hold 3,833,856" in why
    assert engine_report._weights_exceed_bram(stage3, "85k") is None


def test_engine_whose_weights_exceed_the_block_ram_is_placed_with_streamed_weights(
        tiny, monkeypatch):
    monkeypatch.setattr(engine_report, "_weights_exceed_bram",
                        lambda manifest, device: "does not fit LFE5U-85F: the weights alone are "
                                                 "576 bits, its 0 block RAMs hold 0 (test)")
    sec = engine_report.build_engine_section("xc7", lanes=4, bits_per_cycle=8, stages=(1,),
                                             forms=("binarized",), jobs=2, seeds=(1, 2))
    (row,) = sec["rows"]
    assert row["fmax_weights"] == "stream" and row["fmax_mhz"] > 50
    # one run per seed, the median of the two, each run with its critical path
    assert [x["seed"] for x in row["fmax_runs"]] == [1, 2]
    got = sorted(x["fmax_mhz"] for x in row["fmax_runs"])
    assert row["fmax_mhz"] == round((got[0] + got[1]) / 2, 2)
    assert all(x["critical_path"]["delay_ns"] > 0 for x in row["fmax_runs"])
    assert "_wstream_" in row["fmax_module"] and "_wstream_" not in row["module"]
    assert row["weight_bits_per_cycle"] == 4 * 8            # one block of P*B bits
    assert row["lut"] > 0                                   # resources: the on-chip form
    md = engine_report.engine_markdown(sec, "xc7")
    assert "(weights streamed)" in md and "32 weight bits per cycle" in md
    assert "the median over nextpnr seeds 1, 2" in md
    assert "- stage 1 binarized Fmax per seed: seed 1: " in md
    low = min(row["fmax_runs"], key=lambda x: x["fmax_mhz"])["seed"]
    assert f"- stage 1 binarized critical path (seed {low}, the median run): " in md


def test_engine_markdown_seeds_without_a_result():
    row = {"stage": 2, "form": "binarized", "lut": 1000, "ff": 1, "carry": 0, "dsp": 0,
           "bram": 0, "cycles_per_image": 10, "measured_interval": None, "source": "s",
           "module": "m", "fmax_mhz": None, "fmax_error": "nextpnr failed",
           "fmax_runs": [{"seed": 1, "fmax_mhz": 151.0, "error": None, "critical_path": None},
                         {"seed": 4, "fmax_mhz": None, "error": "nextpnr failed",
                          "critical_path": None}]}
    sec = {"lanes": 4, "bits_per_cycle": 8, "rows": [row], "fmax": True, "seeds": [1, 4]}
    md = engine_report.engine_markdown(sec, "xc7")
    assert "seed 1: 151.00 MHz; seed 4: no result (nextpnr failed)." in md
    assert "| 2 | binarized | 1,000 |" in md and "| n/a |" in md


def test_streamed_placement_with_its_own_cycles_is_said():
    """A streamed engine never splits its weights: where its cycles differ from the on-chip
    form's, images / s and GOPS / kLUT are at its own, and report.md says so."""
    manifest = {"blocks": [{"n": 9 * 256, "folds": 32}, {"n": 9 * 512, "folds": 36}]}
    assert engine_report.ops_per_cycle(manifest, 8) == 2 * 8 * (72 + 128)
    row = {"stage": 4, "form": "binarized", "lut": 11000, "ff": 1, "carry": 0, "dsp": 0,
           "bram": 0, "cycles_per_image": 32768, "measured_interval": None, "source": "s",
           "module": "m", "fmax_mhz": 100.0, "fmax_error": None, "fmax_weights": "stream",
           "fmax_module": "m_wstream", "weights_note": "does not fit (test)",
           "weight_bits_per_cycle": 4096, "fmax_cycles_per_image": 36864,
           "fmax_ops_per_cycle": 8192, "ops_per_cycle": 9216,
           "fmax_runs": [{"seed": 1, "fmax_mhz": 100.0, "error": None, "critical_path": None}]}
    sec = {"lanes": 8, "bits_per_cycle": [64, 64, 64, 128], "rows": [row], "fmax": True,
           "seeds": [1]}
    md = engine_report.engine_markdown(sec, "xc7")
    assert ("its images / s and GOPS / kLUT are at its own 36,864 cycles per image and 8,192 "
            "operations per cycle (the on-chip form: 32,768 and 9,216)") in md
    assert "B = 128 (stage 4)" in md


def test_forms_compared_without_dsps_name_the_multipliers_and_their_luts():
    """Both forms of a stage side by side: the baseline's multipliers (``post_lanes`` of
    them per block and multiply), its multiplies per image, the LUT difference and ratio."""
    from bincount.gateware.block_params import block_params, layer_names
    from bincount.model.nets.ops import network_ops

    params = [block_params(e, layer_names(e)[0], lanes=4, bits_per_cycle=8, post_lanes=q)
              for e in map(_tiny_export, ("binarized", "baseline")) for q in (None, 1)]
    assert [p.multipliers for p in params] == [0, 0, 2 * 4, 2 * 1]
    # the manifest's count is that of the multiplications in the emitted Verilog
    from bincount.hw.network_emit import verilog_parts

    for form, q in (("binarized", 1), ("baseline", None), ("baseline", 1)):
        module, text, manifest = engine_design(_tiny_export(form), 1, EngineKnobs(4, 8,
                                                                              post_lanes=q))
        assert verilog_parts(text, module)["other"]["multipliers"] == \
            sum(b["multipliers"] for b in manifest["blocks"])
    total = network_ops("reactnet18")["totals"]["baseline_multiplies"]
    row = {"stage": 1, "cycles_per_image": 10, "measured_interval": None, "source": "s",
           "module": "m", "ff": 1, "carry": 0, "bram": 0, "dsp": 0}
    rows = [dict(row, form="binarized", lut=1000, multipliers=0),
            dict(row, form="baseline", lut=2500, multipliers=8,
                 baseline_multiplies_per_image=65536,
                 network_baseline_multiplies_per_image=total)]
    sec = {"lanes": 4, "bits_per_cycle": 8, "rows": rows, "fmax": False}
    md = engine_report.engine_markdown(sec, "xc7-nodsp")
    assert "| 1 | 65,536 | 8 | 1,000 | 2,500 | 0 | 0 | 1,500 | 2.50 |" in md
    assert "LUT difference per baseline multiplier: 188 to 188" in md
    assert f"the stages above: 65,536 of the network's {total:,}." in md
    assert "### Binarized against baseline" not in engine_report.engine_markdown(
        dict(sec, rows=rows[:1]), "xc7-nodsp")
    # a stage whose rows lack the counts (another stage has them): no total, no error
    more = [dict(r, stage=2) for r in rows[:1]] + [dict(row, stage=2, form="baseline",
                                                        lut=2400, multipliers=8)]
    md = engine_report.engine_markdown(dict(sec, rows=rows + more), "xc7-nodsp")
    assert "| 2 | n/a | 8 | 1,000 | 2,400 |" in md and "the stages above" not in md
