"""Verilog emission, manifests, the block registry and ``bincount generate``."""

import errno
import json
import os
import subprocess
import sys
import stat

import pytest

from bincount import __version__, cli, fileio
from bincount.errors import BincountError
from bincount.hw import emit as emit_mod
from bincount.hw.blocks import BLOCKS, build_block, module_name
from bincount.hw.emit import emit, emit_block, emit_component, verilog_text, wrap_long_lines
from bincount.hw.ports import port_map

MANIFEST_KEYS = ["module", "block", "parameters", "ports", "latency", "clock", "reset",
                 "generator"]


@pytest.fixture
def generate(monkeypatch):
    """``bincount generate ...`` through ``bincount.cli.main`` (only this verb registered, so
    the test does not depend on the other verbs' modules)."""
    monkeypatch.setattr(cli, "VERBS", {"generate": cli.VERBS["generate"]})
    return lambda *argv: cli.main(["generate", *argv])


# --- registry -------------------------------------------------------------------------------

@pytest.mark.parametrize("block, params, module", [
    ("xnor_popcount", {"n": 576}, "bincount_xnor_popcount_n576"),
    ("threshold_compare", {"n": 576}, "bincount_threshold_compare_n576_out16"),
    ("baseline_scale", {"n": 4608, "shift": 9},
     "bincount_baseline_scale_n4608_sh9_out16_mul18_off32"),
    ("output_lane", {"n": 1152}, "bincount_output_lane_binarized_n1152_out16"),
    ("output_lane", {"n": 1152, "form": "baseline", "out_bits": 8},
     "bincount_output_lane_baseline_n1152_out8_sh12_mul18_off32"),
])
def test_module_names(block, params, module):
    built = build_block(block, **params)
    assert built.module == module
    assert module_name(block, built.parameters) == module


def test_resolved_parameters():
    built = build_block("output_lane", n=64, form="baseline", shift=None)
    assert built.parameters == {"form": "baseline", "n": 64, "out_bits": 16, "shift": 12,
                                "mul_bits": 18, "off_bits": 32}


@pytest.mark.parametrize("block, params, match", [
    ("popcount", {"n": 5}, r"unknown block 'popcount'; valid blocks: xnor_popcount, "
                           r"threshold_compare, baseline_scale, output_lane"),
    ("xnor_popcount", {}, r"block 'xnor_popcount' needs parameter 'n'"),
    ("xnor_popcount", {"n": 5, "shift": 3}, r"block 'xnor_popcount' takes no parameter 'shift'; "
                                            r"its parameters are: n"),
    ("threshold_compare", {"n": 0}, r"n must be in 1\.\.65536, got 0"),
    ("baseline_scale", {"n": 5, "shift": 41}, r"shift must be in 0\.\.40, got 41"),
    ("output_lane", {"n": 5, "form": "x"}, r"form must be one of"),
    ("output_lane", {"n": 5, "shift": 2}, r"shift applies only to form 'baseline'"),
])
def test_build_block_errors(block, params, match):
    with pytest.raises(BincountError, match=match):
        build_block(block, **params)


# --- Verilog and manifest -------------------------------------------------------------------

@pytest.mark.parametrize("block, params", [
    ("xnor_popcount", {"n": 7}),
    ("threshold_compare", {"n": 7}),
    ("baseline_scale", {"n": 7, "shift": 2}),
    ("output_lane", {"n": 7, "form": "binarized"}),
    ("output_lane", {"n": 7, "form": "baseline"}),
])
def test_manifest_matches_verilog(block, params):
    built = build_block(block, **params)
    text, info = emit_component(built.component, built.module, block=built.name,
                                parameters=built.parameters)
    assert list(info) == MANIFEST_KEYS
    assert info["module"] == built.module and info["block"] == block
    assert info["parameters"] == built.parameters
    assert info["latency"] == built.component.latency
    assert info["clock"] == "clk" and info["reset"] == "rst (synchronous, active high)"
    assert info["generator"] == f"bincount {__version__}"
    declared = port_map(text, info["module"])
    assert {p["name"]: (p["direction"], p["width"]) for p in info["ports"]} == declared
    for port in info["ports"]:
        assert set(port) == {"name", "direction", "width", "signed", "meaning"}
        assert port["meaning"], port["name"]
    signed = {p["name"] for p in info["ports"] if p["signed"]}
    expected_signed = {"xnor_popcount": set(), "threshold_compare": {"hi", "lo", "y"},
                       "baseline_scale": {"mul", "offset", "y"}}
    if block in expected_signed:
        assert signed == expected_signed[block]
    assert [p["name"] for p in info["ports"]][:2] == ["clk", "rst"]


def test_emit_in_memory_equals_files(tmp_path):
    text, info = emit("threshold_compare", n=9)
    v_path, j_path = emit_block("threshold_compare", tmp_path, n=9)
    assert v_path.read_text() == text
    assert json.loads(j_path.read_text()) == info
    assert (v_path.name, j_path.name) == (f"{info['module']}.v", f"{info['module']}.json")


def test_verilog_is_deterministic(tmp_path):
    a = emit_block("output_lane", tmp_path / "a", n=64, form="baseline")
    b = emit_block("output_lane", tmp_path / "b", n=64, form="baseline")
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    # another interpreter, another hash seed, another working directory
    code = ("import sys; from bincount.hw.emit import emit_block; "
            "emit_block('output_lane', sys.argv[1], n=64, form='baseline')")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], check=True, env=env,
                   cwd=tmp_path)
    for pa in a:
        assert (tmp_path / "c" / pa.name).read_bytes() == pa.read_bytes()
    text = a[0].read_text()
    assert "src =" not in text and os.getcwd() not in text and str(tmp_path) not in text


def test_failed_second_write_leaves_nothing(tmp_path, failing_replace):
    failing_replace(lambda src, dst: dst.endswith(".json"))
    with pytest.raises(BincountError, match=r"\.json': No space left on device; free some"):
        emit_block("xnor_popcount", tmp_path, n=4)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_earlier_files(tmp_path):
    """A folder with the manifest's name: refused before any rename; the earlier Verilog of
    the same module stays as it was (it used to be removed)."""
    first = emit_block("xnor_popcount", tmp_path, n=4)
    old = first[0].read_bytes()
    first[0].write_bytes(old + b"// earlier run\n")
    first[1].unlink()
    first[1].mkdir()
    with pytest.raises(BincountError, match="a folder has the output's name"):
        emit_block("xnor_popcount", tmp_path, n=4)
    assert first[0].read_bytes() == old + b"// earlier run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in first)


def test_atomic_write_all_restores_what_it_replaced(tmp_path, monkeypatch, failing_replace):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("old a")
    failing_replace(lambda src, dst: dst == str(c), errno.EACCES)
    with pytest.raises(BincountError, match=r"cannot write '.*c\.txt': Permission denied"):
        fileio.atomic_write_all({a: "new a", b: b"new b", c: "new c"})
    assert a.read_text() == "old a" and not b.exists() and not c.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]      # no temporary left
    # a file that cannot be put back is named, and its earlier contents kept beside it
    failing_replace(lambda src, dst: dst == str(c) or src.endswith(".old"), errno.EACCES)
    with pytest.raises(BincountError, match=r"could not be put back: '.*a\.txt'; their "
                                            r"earlier contents are in '.*\.a\.txt\..*\.old'"):
        fileio.atomic_write_all({a: "new a", c: "new c"})
    (old,) = [p for p in tmp_path.iterdir() if p.name.endswith(".old")]
    assert old.read_text() == "old a" and a.read_text() == "new a"
    old.unlink()
    monkeypatch.undo()
    fileio.atomic_write_all({a: "new a", b: b"new b"})
    assert a.read_text() == "new a" and b.read_bytes() == b"new b"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(b.stat().st_mode) == 0o666 & ~umask


def test_wide_lane_converts():
    # the 4608-input lane once died with bad_alloc in the WebAssembly Yosys (mission.md)
    built = build_block("output_lane", n=4608, form="binarized")
    text = verilog_text(built.component, built.module)
    ports = port_map(text, built.module)
    assert ports["act"] == ("input", 4608) and ports["y"] == ("output", 16)
    # Verilator's preprocessor refuses lines of more than 40,000 tokens
    assert max(len(line) for line in text.splitlines()) <= 20000


def test_wrap_long_lines_changes_whitespace_only():
    line = "  assign x = { " + ", ".join(f"a[{i}]" for i in range(5000)) + " };"
    text = "module m;\n" + line + "\n  // " + "c, " * 9000 + "\nendmodule\n"
    wrapped = wrap_long_lines(text, limit=1000)
    assert max(len(s) for s in wrapped.splitlines()[:-2]) <= 2100
    assert "".join(wrapped.split()) == "".join(text.split())
    assert wrapped.splitlines()[-2] == text.splitlines()[-2]   # comments are left alone


# --- command line ---------------------------------------------------------------------------

def test_cli_writes_and_prints(tmp_path, generate, capsys):
    assert generate("output_lane", "--n", "64", "--form", "baseline", "--shift", "7",
                    "-o", str(tmp_path / "v")) == 0
    out = capsys.readouterr().out.split()
    name = "bincount_output_lane_baseline_n64_out16_sh7_mul18_off32"
    assert out == [str(tmp_path / "v" / f"{name}.v"), str(tmp_path / "v" / f"{name}.json")]
    info = json.loads((tmp_path / "v" / f"{name}.json").read_text())
    assert info["parameters"]["shift"] == 7


def test_cli_default_directory(tmp_path, generate, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert generate("xnor_popcount", "--n", "6") == 0
    assert sorted(p.name for p in (tmp_path / "build" / "verilog").iterdir()) == [
        "bincount_xnor_popcount_n6.json", "bincount_xnor_popcount_n6.v"]


@pytest.mark.parametrize("argv, match", [
    (["nope", "--n", "5"], "unknown block 'nope'; valid blocks: xnor_popcount"),
    (["xnor_popcount"], "block 'xnor_popcount' needs --n N"),
    (["xnor_popcount", "--n", "five"], "--n needs an integer, got 'five'"),
    (["xnor_popcount", "--n", "0"], "--n 0 is out of range; expected 1..32512"),
    (["xnor_popcount", "--n", "-3"], "--n -3 is out of range; expected 1..32512"),
    (["xnor_popcount", "--n", "8", "--shift", "2"],
     "--shift does not apply to block 'xnor_popcount'; its options are: --n"),
    (["threshold_compare", "--n", "8", "--out-bits", "1"],
     "--out-bits 1: out_bits must be in 2..64, got 1"),
    (["baseline_scale", "--n", "8", "--shift", "99"], "--shift 99: shift must be in 0..40, got 99"),
    (["baseline_scale", "--n", "8", "--mul-bits", "64"],
     "--mul-bits 64: mul_bits must be in 2..48, got 64"),
    (["output_lane", "--n", "8", "--form", "lut"],
     "--form lut: form must be one of 'binarized', 'baseline'"),
    (["output_lane", "--n", "8", "--shift", "3"], "--shift 3: shift applies only to form 'baseline'"),
])
def test_cli_bad_input(tmp_path, generate, capsys, argv, match):
    out_dir = tmp_path / "out"
    assert generate(*argv, "-o", str(out_dir)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bincount generate: error: "), captured.err
    assert match in lines[0]
    assert captured.out == ""
    assert not out_dir.exists()


def test_cli_unwritable_directory(tmp_path, generate, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert generate("xnor_popcount", "--n", "8", "-o", str(blocker / "sub")) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot create output directory" in lines[0]
    assert "a file is in its path: choose another folder" in lines[0]
    assert generate("xnor_popcount", "--n", "8", "-o", str(blocker)) == 2
    assert "a file has that name: choose another folder" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_registry_lists_the_four_blocks():
    assert list(BLOCKS) == ["xnor_popcount", "threshold_compare", "baseline_scale", "output_lane"]
