"""The network top's pieces and its generator: width converters in the Amaranth simulator,
knob checks and refusals, ``bincount generate network`` (Verilog, manifest, plan). The whole
network runs on Verilator in ``sim/test_network.py``."""

import copy
import json
import os

import numpy as np
import pytest

from bincount import cli
from bincount.errors import BincountError
from bincount.fileio import atomic_savez
from bincount.gateware.network_top import NetworkTop, check_knobs, default_knobs
from bincount.gateware.width_converter import WidthConverter

from network_cases import drive_stream, small_network

FULL = os.environ.get("BINCOUNT_FULL") == "1"


@pytest.mark.parametrize("lanes_in,lanes_out", [(8, 2), (2, 8), (4, 8)])
def test_width_converter_keeps_channel_order(lanes_in, lanes_out):
    rng = np.random.default_rng(lanes_in * 10 + lanes_out)
    channels, pixels = 16, 5
    x = rng.integers(0, 1 << 16, (pixels, channels))
    pack = lambda vals: sum(int(v) << (16 * k) for k, v in enumerate(vals))   # noqa: E731
    beats_in = [pack(row[g:g + lanes_in]) for row in x for g in range(0, channels, lanes_in)]
    expect = [pack(row[g:g + lanes_out]) for row in x for g in range(0, channels, lanes_out)]
    dut = WidthConverter(lanes_in, lanes_out)
    got, _, _ = drive_stream(dut, beats_in, len(expect), seed=1, gap=0.4, stall=0.4)
    assert got == expect
    got, _, log = drive_stream(WidthConverter(lanes_in, lanes_out), beats_in, len(expect),
                               gap=0.0, stall=0.0)
    assert got == expect
    # full rate: one beat per cycle on the narrower side
    assert log["out"][-1] - log["out"][0] + 1 <= max(len(expect), len(beats_in)) + 1


def test_width_converter_refuses_bad_lanes():
    with pytest.raises(BincountError, match="lanes_in must be a power of two, got 3"):
        WidthConverter(3, 4)
    with pytest.raises(BincountError, match="no converter needed"):
        WidthConverter(4, 4)


def test_network_top_knobs_and_converters():
    export, _ = small_network("binarized")
    assert default_knobs(export) == ([4, 4, 4, 4], [4, 4, 4, 4])
    top = NetworkTop(export, lanes=[4, 4, 8, 4], bits_per_cycle=4, stem_lanes=2, head_lanes=8)
    assert [(c.lanes_in, c.lanes_out) if c else None for c in top.converters] == \
        [(2, 4), None, (4, 8), (8, 4), (4, 8)]
    assert top.part_cycles == {"stem": 18432, "stage1": 9216, "stage2": 9216, "stage3": 4608,
                               "stage4": 9216, "head": 320}
    assert top.ideal_cycles == 18432
    with pytest.raises(BincountError, match="lanes = 8 is too large for layer stage2.conv1"):
        NetworkTop(export, lanes=[4, 8, 8, 4], bits_per_cycle=4)
    with pytest.raises(BincountError, match="lanes needs one value or 4"):
        NetworkTop(export, lanes=[4, 4])
    # a layer outside stages 1-4 is refused, not left out of the engine
    meta = copy.deepcopy(export["meta"])
    meta["layers"][-1]["name"] = "stage5.conv1"
    with pytest.raises(BincountError, match="layer 'stage5.conv1' is in none of stages "
                                            "1, 2, 3, 4"):
        check_knobs(dict(export, meta=meta))


def test_network_top_streamed_stage_has_weight_inputs():
    export, _ = small_network("binarized")
    top = NetworkTop(export, lanes=4, bits_per_cycle=4,
                     weights=["memory", "memory", "memory", "stream"])
    names = [n for n, _ in top.weight_streams]
    assert names == ["w4_0", "w4_1", "w4_2", "w4_3"]
    for name, params in top.weight_streams:
        assert getattr(top, name).payload.shape().width == 16 and params.weights == "stream"
        assert f"{name}__payload" in top.port_doc
    plain = NetworkTop(export, lanes=4, bits_per_cycle=4)
    assert plain.weight_streams == [] and not any(k.startswith("w4_") for k in plain.port_doc)
    with pytest.raises(BincountError, match="weights needs one value or 4"):
        NetworkTop(export, weights=["stream"] * 3)
    with pytest.raises(BincountError, match="weights must be 'memory' or 'stream'"):
        NetworkTop(export, weights="rom")


def test_network_top_refuses_real_downsample():
    export, _ = small_network("binarized")
    ex = dict(export)
    ex["meta"] = copy.deepcopy(export["meta"])
    ex["meta"]["layers"][4]["downsample"] = "real"
    with pytest.raises(BincountError, match="^layer stage2.conv1: the real 1x1 downsample "
                                            "shortcut is not implemented in the engine; export "
                                            "with the flag shortcut=concat$"):
        NetworkTop(ex, lanes=4, bits_per_cycle=4)


@pytest.fixture
def generate(monkeypatch):
    monkeypatch.setattr(cli, "VERBS", {"generate": cli.VERBS["generate"]})
    return lambda *argv: cli.main(["generate", *argv])


@pytest.fixture
def export_file(tmp_path):
    export, _ = small_network("binarized")
    path = tmp_path / "net.npz"
    atomic_savez(path, **{k: v for k, v in export.items() if k != "meta"})
    return path


@pytest.mark.parametrize("argv,message", [
    (["--lanes", "4,4"], "--lanes needs 1 or 4 values (one per stage), got 2"),
    (["--lanes", "x"], "--lanes needs an integer or 4 comma-separated integers"),
    (["--lanes", "3"], "--lanes 3: lanes must be a power of two, got 3"),
    (["--lanes", "4,4,4,4", "--stem-lanes", "3"], "error: --stem-lanes 3: stem lanes must be "
                                                  "a power of two"),
    (["--device", "xczu7ev"], "--device needs --target-fps"),
    (["--target-fps", "100"], "--target-fps needs --device"),
    (["--device", "ecp5-45f", "--target-fps", "1e12"], "more than the 0 cycles per image that "
                                                       "1e+12 images/s leave at 100 MHz"),
    (["--device", "xczu7ev", "--target-fps", "100", "--lanes", "4"], "give either"),
    (["--clock-mhz", "100"], "--clock-mhz needs --device and --target-fps"),
    (["--device", "vu9p", "--target-fps", "100"], "device 'vu9p'; expected one of"),
    (["--stage", "1"], "--stage does not apply to network"),
])
def test_generate_network_errors(generate, export_file, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert generate("network", "--export", str(export_file), "-o", str(out), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
    assert generate("xnor_popcount", "--n", "9", "--device", "xczu7ev") == 2
    assert "--device applies to network only" in capsys.readouterr().err


def test_generate_network_planned(generate, export_file, tmp_path, capsys):
    """Planned knobs (the small network on the smallest device), Verilog and manifest."""
    out = tmp_path / "out"
    assert generate("network", "--export", str(export_file), "--device", "ecp5-45f",
                    "--target-fps", "1000", "--clock-mhz", "100", "-o", str(out)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("plan for ecp5-45f at 100 MHz, target 1000 images/s")
    v, j = [p for p in lines if p.startswith(str(out))]
    info = json.loads(open(j).read())
    assert info["block"] == "network" and info["plan"]["device"] == "ecp5-45f"
    parts = {p["name"]: p for p in info["parts"]}
    plan = {p["name"]: p for p in info["plan"]["parts"]}
    for name in ("stem", "stage1", "stage2", "stage3", "stage4"):
        assert parts[name]["lanes"] == plan[name]["lanes"]
        assert parts[name]["cycles_per_image"] == plan[name]["cycles_per_image"]
        assert parts[name]["multipliers"] == parts[name]["multipliers_formula"]
        assert parts[name]["weight_bits"] == plan[name]["weight_bits"]
    assert parts["stem"]["multipliers"] == 3 * parts["stem"]["lanes"]
    assert parts["head"]["multipliers"] == 1
    assert info["ideal_cycles"] == max(p["cycles_per_image"] for p in info["parts"])
    names = [p["name"] for p in info["ports"]]
    assert names == ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload",
                     "o__valid", "o__ready"]
    text = open(v).read()
    assert f"module {info['module']}(" in text
    if FULL:                       # same inputs, same bytes (a second emission: about 30 s)
        out2 = tmp_path / "out2"
        assert generate("network", "--export", str(export_file), "--device", "ecp5-45f",
                        "--target-fps", "1000", "--clock-mhz", "100", "-o", str(out2)) == 0
        assert (out2 / os.path.basename(v)).read_bytes() == text.encode()
        assert (out2 / os.path.basename(j)).read_bytes() == open(j, "rb").read()
