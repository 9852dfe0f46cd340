"""The build layer of ``bincount.hw``: the content-addressed store, the port parser, the engine
knobs, the source digests, and the import structure of the package (no cycles, imports at the
top of modules)."""

import ast
from pathlib import Path

import pytest

from bincount.errors import BincountError
from bincount.gateware import block_params
from bincount.hw import cache, knobs, ports, report
from bincount.hw.sources import files_digest, gateware_digest, generator_digest
from import_graph import assert_no_cycle, import_graph

HW = Path(report.__file__).parent
#: ``cache_key`` of the inputs below, as the synthesis cache has always derived it.
PINNED_KEY = "f0854b5962f640d2e1a4d66d2f9aff0a4e76a2ac484e00adb41fbe7bf822073d"

# --- store ------------------------------------------------------------------------------------


def test_cache_key_derivation_is_unchanged():
    # the synthesis and place-and-route caches hold hours of results under keys made this way
    assert cache.cache_key("synth", "module m; endmodule\n", "m", "xc7") == PINNED_KEY
    a = cache.cache_key("ab", "c")
    assert a != cache.cache_key("a", "bc") and len(a) == 64
    assert cache.cache_key(b"x") == cache.cache_key("x")


def test_cache_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("BINCOUNT_CACHE_DIR", raising=False)
    assert cache.cache_dirs()["synth"] == Path("build/cache/synth")
    monkeypatch.setenv("BINCOUNT_CACHE_DIR", str(tmp_path))
    assert cache.cache_dirs()["cycles"] == tmp_path / "cycles"
    assert cache.cache_dirs(None) == {k: None for k in cache.CACHE_KINDS}
    assert cache.cache_dirs(tmp_path / "r")["verilog"] == tmp_path / "r" / "verilog"


def test_store_entries_and_cached(tmp_path, capsys):
    assert cache.read_entry(tmp_path, "k") is None
    cache.write_entry(tmp_path / "s", "k", {"a": 1})
    assert cache.read_entry(tmp_path / "s", "k") == {"a": 1}
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["k.json"]     # no temporaries
    (tmp_path / "s" / "bad.json").write_text("[1, 2]")
    assert cache.read_entry(tmp_path / "s", "bad") is None
    calls = []

    def make():
        calls.append(1)
        return {"v": 2}

    assert cache.cached(tmp_path / "s", "c", make, ("v",)) == {"v": 2}
    assert cache.cached(tmp_path / "s", "c", make, ("v",)) == {"v": 2} and len(calls) == 1
    assert cache.cached(tmp_path / "s", "c", make, ("w",)) == {"v": 2} and len(calls) == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache.write_entry(blocker / "sub", "k", {}, warn="synthesis")   # warns, does not raise
    assert "cannot write synthesis cache" in capsys.readouterr().err


def test_digests(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    d = files_digest([tmp_path / "a.py"])
    assert d == files_digest([tmp_path / "a.py"]) and len(d) == 64
    (tmp_path / "a.py").write_text("x = 2\n")
    assert files_digest([tmp_path / "a.py"]) != d
    assert len(gateware_digest()) == 64 and generator_digest() == generator_digest()


# --- ports ------------------------------------------------------------------------------------

AMARANTH_STYLE = """
module top(clk, rst, \\a.b , y);
  input clk;
  wire clk;
  input rst;
  input signed [7:0] \\a.b ;
  output [15:0] y;
  reg [15:0] y = 16'h0000;
endmodule
"""


def test_port_parser_views():
    assert ports.verilog_ports(AMARANTH_STYLE, "top") == [
        ("input", "clk", 1), ("input", "rst", 1), ("input", "\\a.b", 8), ("output", "y", 16)]
    assert ports.port_map(AMARANTH_STYLE, "top") == {
        "clk": ("input", 1), "rst": ("input", 1), "a.b": ("input", 8), "y": ("output", 16)}
    assert ports.header_port_names(AMARANTH_STYLE, "top") == ["clk", "rst", "a.b", "y"]
    ansi = "module m #(parameter W = 4) (input clk, input [W:0] a, output reg [3:0] q);\nendmodule"
    with pytest.raises(BincountError, match="not found"):
        ports.verilog_ports(ansi, "other")


# --- knobs ------------------------------------------------------------------------------------


def test_one_default_for_the_engine_knobs():
    k = knobs.EngineKnobs()
    assert (k.lanes, k.bits_per_cycle, k.weights) == (block_params.DEFAULT_LANES,
                                                      block_params.DEFAULT_BITS_PER_CYCLE,
                                                      "memory")
    assert knobs.EngineKnobs(None, None, None) == k
    assert k.with_weights("stream").weights == "stream"
    assert not hasattr(report, "DEFAULT_LANES")     # the estimate's 64 lanes are ESTIMATE_LANES


def test_knob_checks_name_the_options():
    opts = {"lanes": "--engine-lanes", "weights": "--weights"}
    with pytest.raises(BincountError, match="--weights must be memory or stream, got 'rom'"):
        knobs.EngineKnobs(weights="rom", options=opts)
    with pytest.raises(BincountError, match=r"--engine-lanes 3: expected a power of two up to 64"):
        knobs.EngineKnobs(3, options=opts).validate(limit=64)
    with pytest.raises(BincountError, match="bits_per_cycle 128: expected a power of two"):
        knobs.EngineKnobs(8, 128).validate(limit=64)
    assert knobs.EngineKnobs(64, 64).validate(limit=64).lanes == 64
    # one B per stage: checked per stage, and a layer with its stage's B
    k = knobs.EngineKnobs(8, [64, 64, 64, 128])
    assert k.bits_per_cycle == (64, 64, 64, 128) and k.stage_bits(4) == 128
    assert k.validate(limit={3: 128, 4: 256}) is k
    with pytest.raises(BincountError, match="bits_per_cycle 128 for stage 4: expected a power "
                                            "of two up to 64"):
        k.validate(limit={4: 64})
    with pytest.raises(BincountError, match="bits_per_cycle: one value per stage is checked "
                                            "against a limit per stage built"):
        k.validate(limit=64)
    with pytest.raises(BincountError, match="bits_per_cycle needs 1 value or 4"):
        knobs.EngineKnobs(8, (64, 128))


# --- structure --------------------------------------------------------------------------------

#: Imports inside functions that stay, with their reason.
LAZY_IMPORTS = {
    # bincount --help imports every verb's module (bincount/cli.py)
    "generate_cli.py": None, "report_cli.py": None, "build_cli.py": None,
    # the network part of `bincount generate` (imported by generate_cli.run), same reason
    "network_cli.py": None,
    # matplotlib (about a second) only for the engines' figure
    "engine_report.py": {"matplotlib", "matplotlib.pyplot"},
    # dask.distributed (an optional dependency) only for --scheduler, and its address parser
    "executor.py": {"dask.distributed", "distributed.comm", "distributed.comm.registry"},
    # the PYNQ host script of the Zynq board build runs on the board: pynq (only there) and
    # Pillow (only for image files) when used, so that --help and bad input need neither
    "classify.py": {"pynq", "PIL"},
}


def test_hw_imports_at_the_top_and_without_cycles():
    graph = import_graph(HW, "bincount.hw", LAZY_IMPORTS)
    assert_no_cycle(graph)
    assert "report" not in graph["engine_report"]


def test_engine_report_uses_public_names_only():
    tree = ast.parse((HW / "engine_report.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bincount."):
            assert not any(a.name.startswith("_") for a in node.names), node.module
