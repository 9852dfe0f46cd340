"""Yosys synthesis and nextpnr wrappers (bincount.hw.synth, bincount.hw.pnr) on tiny designs."""

import json
import threading
import time

import pytest

from bincount.errors import BincountError
from bincount.hw.pnr import critical_path, fmax_ecp5, register_io_wrapper
from bincount.hw.ports import verilog_ports
from bincount.hw.synth import (TARGETS, SynthesisError, count_resources, synth_script,
                               synthesize)

# An 18 x 18 signed multiply-add behind registers: one DSP on every family that has them.
MAC_V = """
module mac(input clk, input [17:0] a, input [17:0] b, input [7:0] c, output reg [15:0] y);
  reg signed [17:0] ar, br;
  always @(posedge clk) begin
    ar <= a; br <= b;
    y <= (ar * br) >>> 12;
  end
endmodule
"""

# A registered 8-bit adder: LUTs, flip-flops and carry logic, no DSP.
ADD_V = """
module add8(input clk, input [7:0] a, input [7:0] b, output reg [8:0] s);
  reg [7:0] ar, br;
  always @(posedge clk) begin ar <= a; br <= b; s <= ar + br; end
endmodule
"""


def test_unknown_target_lists_valid_targets(tmp_path):
    with pytest.raises(BincountError, match=r"unknown target 'vu9p'.*xc7, xc7-nodsp, xcup, ecp5, ice40"):
        synthesize(ADD_V, "add8", "vu9p", cache_dir=tmp_path)
    with pytest.raises(BincountError, match="valid targets"):
        synth_script("stratix", "top")


def test_bad_top_name_is_refused(tmp_path):
    with pytest.raises(BincountError, match="identifier"):
        synthesize(ADD_V, "add8; shell rm", "xc7", cache_dir=tmp_path)


def test_count_resources_classes():
    xc7 = count_resources({"LUT2": 3, "LUT6": 2, "INV": 1, "SRL16E": 4, "FDRE": 5, "FDSE": 1,
                           "CARRY4": 2, "DSP48E1": 1, "RAMB18E1": 1, "RAMB36E1": 2,
                           "MUXF7": 3, "IBUF": 9, "$scopeinfo": 1}, "xc7")
    assert (xc7["lut"], xc7["lut_logic"], xc7["ff"], xc7["carry"], xc7["dsp"], xc7["bram"]) \
        == (10, 6, 6, 2, 1, 5)
    assert xc7["other_cells"] == {"MUXF7": 3}
    ecp5 = count_resources({"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "MULT18X18D": 2,
                            "DP16KD": 1, "PFUMX": 2}, "ecp5")
    assert (ecp5["lut"], ecp5["carry"], ecp5["lut_equiv"], ecp5["ff"], ecp5["dsp"],
            ecp5["bram"]) == (10, 3, 16, 7, 2, 1)
    ice40 = count_resources({"SB_LUT4": 4, "SB_DFF": 2, "SB_DFFE": 1, "SB_CARRY": 3,
                             "SB_MAC16": 1, "SB_RAM40_4K": 2}, "ice40")
    assert (ice40["lut"], ice40["ff"], ice40["carry"], ice40["dsp"], ice40["bram"]) \
        == (4, 3, 3, 1, 2)


def test_xc7_mac_uses_a_dsp_and_second_run_is_cached(tmp_path):
    r = synthesize(MAC_V, "mac", "xc7", cache_dir=tmp_path)
    assert r["cached"] is False
    assert r["dsp"] >= 1
    assert r["target"] == "xc7" and r["yosys"].startswith("Yosys ")
    assert "synth_xilinx -family xc7 -flatten" in r["script"]
    assert r["cells"].get("DSP48E1") == r["dsp"]
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and files[0].stem == r["cache_key"] and len(r["cache_key"]) == 64
    t0 = time.monotonic()
    again = synthesize(MAC_V, "mac", "xc7", cache_dir=tmp_path)
    assert time.monotonic() - t0 < 1.0
    assert again["cached"] is True
    assert {k: again[k] for k in ("lut", "ff", "carry", "dsp", "bram")} == \
        {k: r[k] for k in ("lut", "ff", "carry", "dsp", "bram")}


def test_xc7_nodsp_builds_the_multiply_from_luts(tmp_path):
    r = synthesize(MAC_V, "mac", "xc7", cache_dir=tmp_path)
    n = synthesize(MAC_V, "mac", "xc7-nodsp", cache_dir=tmp_path)
    assert "synth_xilinx -family xc7 -nodsp" in n["script"]
    assert n["dsp"] == 0 and r["dsp"] >= 1 and n["lut"] > r["lut"] + 20
    assert n["cache_key"] != r["cache_key"]


def test_cache_key_covers_text_and_target(tmp_path):
    a = synthesize(ADD_V, "add8", "ecp5", cache_dir=tmp_path)
    b = synthesize(ADD_V + "// changed\n", "add8", "ecp5", cache_dir=tmp_path)
    c = synthesize(ADD_V, "add8", "ice40", cache_dir=tmp_path)
    assert not (a["cached"] or b["cached"] or c["cached"])
    assert len({a["cache_key"], b["cache_key"], c["cache_key"]}) == 3
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_corrupt_cache_entry_is_resynthesised(tmp_path):
    r = synthesize(ADD_V, "add8", "ice40", cache_dir=tmp_path)
    (tmp_path / f"{r['cache_key']}.json").write_text("{not json")
    again = synthesize(ADD_V, "add8", "ice40", cache_dir=tmp_path)
    assert again["cached"] is False and again["lut"] == r["lut"]
    json.loads((tmp_path / f"{r['cache_key']}.json").read_text())   # rewritten


def test_other_targets_in_parallel_threads(tmp_path):
    """ecp5 and ice40 at once (each call is its own Yosys process), each counting its cells."""
    out = {}

    def job(target):
        out[target] = synthesize(ADD_V, "add8", target, cache_dir=tmp_path / target)

    threads = [threading.Thread(target=job, args=(t,)) for t in ("ecp5", "ice40")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(out) == {"ecp5", "ice40"}
    for target, r in out.items():
        assert r["ff"] == 8 + 8 + 9
        assert r["carry"] >= 1 and r["dsp"] == 0
    assert out["ecp5"]["cells"].get("TRELLIS_FF") == 25
    assert out["ecp5"]["lut_equiv"] == out["ecp5"]["lut"] + 2 * out["ecp5"]["carry"]
    assert out["ice40"]["cells"].get("SB_CARRY") == out["ice40"]["carry"]


def test_yosys_error_is_one_clear_error(tmp_path):
    with pytest.raises(SynthesisError, match=r"Yosys synthesis of 'broken' for xc7 failed"):
        synthesize("module broken(input a, output y); assign y = ; endmodule\n", "broken",
                   "xc7", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.json"))


def test_targets_match_cli_choices():
    """The report's targets are the synthesis targets, except xcup (the Zynq UltraScale+
    board build's resource table, hw/board_kv260.py)."""
    from bincount.hw.report_cli import TARGET_CHOICES
    assert tuple(t for t in TARGETS if t != "xcup") == TARGET_CHOICES


def test_xcup_counts_uram_and_ultrascale_primitives():
    r = count_resources({"LUT6": 3, "RAM64M8": 1, "FDRE": 5, "CARRY8": 1, "CARRY4": 1,
                         "DSP48E2": 1,
                         "RAMB36E2": 2, "RAMB18E2": 1, "URAM288": 7, "MUXF7": 4}, "xcup")
    assert (r["lut"], r["ff"], r["carry"], r["dsp"], r["bram"], r["uram"]) == (11, 5, 2, 1, 5, 7)
    assert r["other_cells"] == {"MUXF7": 4} and "uram" not in count_resources({}, "xc7")


def test_verilog_ports_and_register_io_wrapper():
    ports = verilog_ports(MAC_V, "mac")
    assert ports == [("input", "clk", 1), ("input", "a", 18), ("input", "b", 18),
                     ("input", "c", 8), ("output", "y", 16)]
    w = register_io_wrapper(MAC_V, "mac")
    assert "mac dut" in w and ".a(r1)" in w and "always @(posedge clk) o4 <= w4;" in w
    with pytest.raises(BincountError, match="no clock port"):
        register_io_wrapper(MAC_V.replace("clk", "ck"), "mac")


def test_fmax_ecp5_tiny_design_and_cache(tmp_path):
    r = fmax_ecp5(ADD_V, "add8", cache_dir=tmp_path)
    assert r["cached"] is False
    assert r["fmax_mhz"] is not None and r["fmax_mhz"] > 50
    assert r["part"] == "LFE5U-85F" and r["package"] == "CABGA381"
    assert r["harness_ff"] == 8 + 8 + 9
    assert r["utilisation"]["TRELLIS_FF"]["used"] >= r["harness_ff"]
    again = fmax_ecp5(ADD_V, "add8", cache_dir=tmp_path)
    assert again["cached"] is True and again["fmax_mhz"] == r["fmax_mhz"]
    cp = r["critical_path"]       # the adder's path: its delay bounds the achieved clock
    assert cp["steps"] and cp["logic_ns"] > 0 and cp["routing_ns"] > 0
    assert abs(cp["delay_ns"] - cp["steps"][-1][2]) < 1e-6
    assert 1000 / cp["delay_ns"] >= r["fmax_mhz"] * 0.9


def test_critical_path_summary():
    def step(kind, delay, a, b):
        return {"type": kind, "delay": delay, "from": {"cell": a, "port": "Q"},
                "to": {"cell": b, "port": "D"}}
    report = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
        step("clk-to-q", 0.5, "r0", "l0"), step("routing", 1.25, "r0", "l0"),
        step("logic", 0.0, "l0", "l1"), step("logic", 0.75, "l1", "r1"),
        step("setup", 0.25, "r1", "r1")]}]}
    cp = critical_path(report)
    assert (cp["delay_ns"], cp["logic_ns"], cp["routing_ns"]) == (2.75, 0.75, 1.25)
    assert [s[0] for s in cp["steps"]] == ["clk-to-q", "routing", "logic", "setup"]
    assert cp["steps"][1] == ["routing", 1.25, 1.75, "r0.Q", "l0.D"]
    assert critical_path({}) is None and critical_path(report, 1) is None


def test_fmax_bad_device():
    with pytest.raises(BincountError, match="unknown ECP5 device"):
        fmax_ecp5(ADD_V, "add8", device="100k", cache_dir=None)
