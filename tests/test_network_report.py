"""``bincount report --network``: resources and DSP per part, Fmax, cycles, images per second,
the multiplies of both forms, the report.json layout, and bad options refused before any tool.

The report path runs with real Yosys and nextpnr runs on a stand-in design (a few small modules
named and shaped like the parts of a network, in place of the network's Verilog, which takes
minutes to convert), as tests/test_report.py stands in for a lane's Verilog."""

import json
import os
import sys
from pathlib import Path

import pytest

from bincount.cli import main
from bincount.errors import BincountError
from bincount.gateware.network_top import PARTS
from bincount.hw import network_report
from bincount.hw.measured_cycles import network_cycles, record_network_cycles
from bincount.hw.network_emit import build_network
from bincount.hw.network_report import (GLUE, RESOURCES, network_knobs, part_of,
                                        part_resources)
from bincount.hw.synth import parse_hierarchy
from bincount.model.export.network_file import DEFAULT_EXPORT, export_meta, load_export, save_export
from bincount.model.nets.ops import export_ops, network_ops

sys.path.insert(0, str(Path(__file__).parent))
from network_cases import small_network  # noqa: E402

KNOBS = ["--network-lanes", "4", "--network-bits-per-cycle", "4"]
SECTION_KEYS = {"knobs", "plan", "device", "target_fps", "clock_mhz", "width_mult", "seeds",
                "fmax", "rows", "pnr", "multiplies", "wall_seconds"}
ROW_KEYS = {"form", "module", "source", "target", "knobs", "parts", "glue", "total",
            "lut_equiv", "other_cells", "ideal_cycles", "measured_interval", "cycles_per_image",
            "cycles_source", "fmax_runs", "fmax_mhz", "ecp5", "images_per_s"}
PART_KEYS = {"name", "lanes", "bits_per_cycle", "cycles_per_image", "weight_bits",
             "verilog_multipliers", "lut", "ff", "carry", "dsp", "bram"}


def _write_exports(folder):
    paths = []
    for form in ("binarized", "baseline"):
        export, _ = small_network(form)
        path = folder / f"small_{form}.npz"
        save_export(path, export)
        paths.append(path)
    return paths


def _stand_in(form):
    """``(verilog, manifest)`` of a stand-in network of ``form``: one module per part, each
    with a multiplier where the part of a network of that form has one (the stem and the head
    in both forms, the stages in the baseline form only), a converter module as glue."""
    top = f"standin_network_{form}"
    mods, chain = [], []
    for j, part in enumerate(PARTS):
        multiply = part in ("stem", "head") or form == "baseline"
        body = ("y <= a[7:0] * m;" if multiply else
                "y <= (a >= {8'd0, m}) ? 16'd5 : 16'd3;")
        mods.append(f"module \\{top}.{part} (input clk, input [15:0] a, input [7:0] m, "
                    f"output reg [15:0] y);\n  always @(posedge clk) {body}\nendmodule\n")
        chain.append(part)
    mods.append(f"module \\{top}.conv (input clk, input [15:0] a, output reg [15:0] y);\n"
                f"  always @(posedge clk) y <= a + 16'd1;\nendmodule\n")
    wires = ["  wire [15:0] w0;", f"  \\{top}.conv c (.clk(clk), .a({{8'd0, i}}), .y(w0));"]
    for j, part in enumerate(chain):
        wires.append(f"  wire [15:0] w{j + 1};")
        wires.append(f"  \\{top}.{part} p{j} (.clk(clk), .a(w{j}), .m(i), .y(w{j + 1}));")
    mods.append(f"module {top} (input clk, input [7:0] i, output [15:0] o);\n"
                + "\n".join(wires) + f"\n  assign o = w{len(chain)};\nendmodule\n")
    cycles = [100, 300, 200, 150, 120, 40]
    parts = [{"name": part, "lanes": 1, "cycles_per_image": c, "weight_bits": 0,
              "memory_bits": 0, "memories": [],
              "multipliers": int(part in ("stem", "head") or form == "baseline")}
             for part, c in zip(PARTS, cycles)]
    for p in parts[1:5]:
        p["bits_per_cycle"] = 4
    manifest = {"module": top, "parameters": {"form": form, "stand_in": True, "taps": False},
                "parts": parts, "ideal_cycles": max(cycles)}
    return "\n".join(mods), manifest


def test_network_report_path_on_a_stand_in_design(tmp_path, monkeypatch):
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(tmp_path / "cache"))
    exports = _write_exports(tmp_path)

    def design(export, knobs, *, taps=False, plan=None, cache_dir=None):
        assert knobs == {"lanes": 4, "bits_per_cycle": 4} and not taps
        return _stand_in(export_meta(export)["form"])
    monkeypatch.setattr(network_report, "network_design", design)
    # a Verilator measurement of the binarized design (as sim/test_network.py records one)
    record_network_cycles(dict(_stand_in("binarized")[1], module="x"),
                          {"interval": 310, "stall": 0.3})
    out = tmp_path / "rep"
    argv = ["report", "--widths", "9", "-o", str(out), "--network", "--network-seeds", "3",
            *KNOBS, "--network-export", str(exports[1]), "--network-export", str(exports[0])]
    assert main(argv) == 0
    rep = json.loads((out / "report.json").read_text())
    sec = rep["whole_network"]
    assert set(sec) == SECTION_KEYS and sec["width_mult"] == 0.0625 and sec["seeds"] == [3]
    rows = {r["form"]: r for r in sec["rows"]}
    assert list(rows) == ["binarized", "baseline"]
    for r in rows.values():
        assert ROW_KEYS <= set(r) and [p["name"] for p in r["parts"]] == list(PARTS)
        assert all(PART_KEYS <= set(p) for p in r["parts"])
        for k in RESOURCES:   # the whole design is the sum of its parts and the glue
            assert r["total"][k] == sum(p[k] for p in r["parts"]) + r["glue"][k]
        assert r["glue"]["carry"] > 0 and r["glue"]["dsp"] == 0       # the converter
        (run,) = r["fmax_runs"]
        assert run["seed"] == 3 and run["fmax_mhz"] == r["fmax_mhz"] > 20
        assert run["critical_path"]["delay_ns"] > 0 and run["critical_path"]["steps"]
        assert "--seed 3" in sec["pnr"]["nextpnr_args"]
        assert r["ecp5"]["dsp"] == r["total"]["dsp"]
        assert r["images_per_s"] == round(r["fmax_mhz"] * 1e6 / r["cycles_per_image"], 1)
        assert r["ideal_cycles"] == 300
    b, m = rows["binarized"], rows["baseline"]
    for r in (b, m):             # the DSP-free synthesis: no DSP, the multiplies in LUTs
        nd = r["nodsp"]
        assert nd["target"] == "xc7-nodsp" and nd["total"]["dsp"] == 0
        assert nd["total"]["lut"] > r["total"]["lut"]
        assert nd["total"]["lut"] == sum(p["lut"] for p in nd["parts"].values()) + \
            nd["glue"]["lut"]
    assert [p["dsp"] for p in b["parts"]] == [1, 0, 0, 0, 0, 1]
    assert [p["dsp"] for p in m["parts"]] == [1, 1, 1, 1, 1, 1]
    assert b["cycles_per_image"] == 310 and b["measured_interval"] == 310
    assert m["measured_interval"] is None and m["cycles_per_image"] == 300
    mul = sec["multiplies"]
    assert mul["full_width"]["baseline"] == 557056 and mul["full_width"]["binarized"] == 0
    assert mul["export_width"] == {"width_mult": 0.0625, "baseline": 557056 // 16,
                                   "binarized": 0}
    md = (out / "report.md").read_text()
    assert "## Whole network" in md and "### DSP per part" in md and "557,056" in md
    assert "34,816" in md and "seed 3:" in md and "300 (ideal)" in md
    assert "binarized critical path (seed 3, the median run): " in md
    assert "### Without DSPs" in md and "DSP48E1 left: 0 binarized, 0 baseline." in md
    # a second run is answered from the build store
    assert main(argv + ["-q"]) == 0
    assert json.loads((out / "report.json").read_text())["whole_network"]["rows"] == \
        sec["rows"]


@pytest.mark.parametrize("argv, message", [
    (["--network-lanes", "4"], "--network-lanes applies with --network only"),
    (["--network-seeds", "2"], "--network-seeds applies with --network only"),
    (["--network", "--network-lanes", "3"], "--network-lanes 3: lanes must be a power of two"),
    (["--network", "--network-lanes", "4", "--network-bits-per-cycle", "3"],
     "error: --network-bits-per-cycle 3: bits_per_cycle must be a power of two"),
    (["--network", "--network-lanes", "4,4"], "--network-lanes needs 1 or 4 values"),
    (["--network", "--network-stem-lanes", "1,2,2,2"], "--network-stem-lanes needs one"),
    (["--network", "--network-lanes", "4", "--network-target-fps", "100"],
     "give either --network-target-fps"),
    (["--network", "--network-target-fps", "1e6"], "throughput"),
    (["--network", "--network-seeds", "1", "1"], "a seed is given twice"),
    (["--network", "--network-seeds", "0"], "--network-seeds"),
    (["--network", "--network-no-fmax", "--network-seeds", "1"], "--network-no-fmax"),
    (["--network", "--network-export", "missing.npz"], "missing.npz"),
    (["--network", "--network-export", str(DEFAULT_EXPORT), "--network-export",
      str(DEFAULT_EXPORT)], "two exports of form 'binarized'"),
])
def test_bad_network_options_fail_before_synthesis(tmp_path, capsys, argv, message):
    out = tmp_path / "rep"
    try:
        status = main(["report", "--widths", "9", "-o", str(out), *argv])
    except SystemExit as exc:          # argparse's own range check
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "[1/" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1
    assert err.startswith("bincount report: error: ")
    assert not out.exists() or not os.listdir(out)


def test_default_knobs_are_the_planners_and_fit_the_85f():
    meta = export_meta(load_export(DEFAULT_EXPORT))
    knobs, plan = network_knobs(meta)
    assert plan["device"] == "ecp5-85f" and plan["target_fps"] == 1000
    assert all(p["weights"] == "memory" for p in plan["parts"])
    assert plan["total"]["bram"] <= plan["capacity"]["bram"]
    stages = [p for p in plan["parts"] if p["name"].startswith("stage")]
    assert knobs == {"lanes": [p["lanes"] for p in stages],
                     "bits_per_cycle": [p["bits_per_cycle"] for p in stages],
                     "stem_lanes": plan["parts"][0]["lanes"]}
    assert network_knobs(meta, {"lanes": 2}) == ({"lanes": 2}, None)


def test_exports_of_both_forms_must_share_one_geometry(tmp_path):
    # the trained default network (binarized) and a calibrated baseline of the same width:
    # other values (BN, shifts), one geometry
    ex, first = network_report.network_exports([DEFAULT_EXPORT])
    assert first == "binarized" and list(ex) == ["binarized", "baseline"]
    assert export_meta(ex["baseline"][0])["form"] == "baseline"
    small = _write_exports(tmp_path)[1]          # a baseline export at width 0.0625
    with pytest.raises(BincountError, match="different layer shapes"):
        network_report.network_exports([DEFAULT_EXPORT, small])


def test_export_ops_scale_with_the_width():
    full = network_ops("reactnet18")["totals"]
    meta = export_meta(load_export(DEFAULT_EXPORT))          # width 0.25: a quarter of the
    assert export_ops(meta)["totals"] == {"baseline_multiplies": full["baseline_multiplies"] // 4,
                                          "binarized_multiplies": 0}    # channels, same maps
    assert export_ops(meta, "requantize")["totals"]["binarized_multiplies"] == 16 * 32 * 32


def test_parts_of_a_hierarchical_synthesis():
    stat = {"modules": {
        "\\net": {"num_cells_by_type": {"net.stem": 1, "net.stage1": 1, "net.conv": 1,
                                        "FDRE": 2}},
        "\\net.stem": {"num_cells_by_type": {"DSP48E1": 3, "LUT2": 5}},
        "\\net.stage1": {"num_cells_by_type": {"net.stage1.block0": 2, "CARRY4": 1}},
        "\\net.stage1.block0": {"num_cells_by_type": {"LUT6": 7, "RAMB36E1": 1}},
        "\\net.conv": {"num_cells_by_type": {"LUT3": 4}},
        "\\unused": {"num_cells_by_type": {"LUT3": 99}}}}
    mods = parse_hierarchy(json.dumps(stat), "net")
    assert mods["net.stage1.block0"]["instances"] == 2 and "unused" not in mods
    assert mods["net"]["cells"] == {"FDRE": 2}
    parts = part_resources(mods, "net", "xc7")
    assert parts["stem"]["dsp"] == 3 and parts["stem"]["lut"] == 5
    assert parts["stage1"]["lut"] == 14 and parts["stage1"]["bram"] == 4
    assert parts["stage1"]["carry"] == 1
    assert parts[GLUE]["lut"] == 4 and parts[GLUE]["ff"] == 2
    assert parts["head"]["lut"] == 0
    assert part_of("net.stage4.block3.lanes", "net") == "stage4"
    assert part_of("net", "net") == GLUE and part_of("other.stem", "net") == GLUE


def test_network_cycles_are_keyed_by_network_and_knobs(tmp_path):
    export, _ = small_network("binarized")

    def manifest(**knobs):       # the parameters of the design, without converting it
        top, name, params = build_network(export, **knobs)
        return {"module": name, "parameters": params}
    a = manifest(lanes=4, bits_per_cycle=4)
    tapped = manifest(lanes=4, bits_per_cycle=4, taps=True)
    other = manifest(lanes=2, bits_per_cycle=4)
    assert a["module"] != tapped["module"]
    record_network_cycles(tapped, {"interval": 999, "stall": 0.3, "images": 2}, tmp_path)
    assert network_cycles(a, tmp_path)["interval"] == 999
    assert network_cycles(other, tmp_path) is None
    assert network_cycles(a, tmp_path / "none") is None
