"""Zynq UltraScale+ board build (hw/board_kv260.py) on the small calibrated network: the files,
their determinism, the weight image against the blocks' weight words, the Tcl script's
block design, the reference results, refusals before any file is written. The Yosys resource
count (``args.resources``) is exercised on the full-width design by bench/zynq_resources.py."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.gateware.block_params import block_params
from bincount.cli import main
from bincount.hw.board_kv260 import BOARDS, build_board
from bincount.model.export.network_file import save_export
from bincount.model.export.network_reference import NetworkReference
from network_cases import small_network

KNOBS = {"lanes": 4, "bits_per_cycle": 4}


@pytest.fixture(scope="module")
def export_path(tmp_path_factory):
    export, _ = small_network()
    path = tmp_path_factory.mktemp("export") / "small.npz"
    save_export(path, {k: v for k, v in export.items() if k != "meta"})
    return path


def args(export_path, board="kv260", **kw):
    base = {"board": board, "export": str(export_path), "lanes": 4, "bits_per_cycle": 4,
            "clock_mhz": None, "resources": False}
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture(scope="module")
def built(export_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("kv260")
    build_board(args(export_path), out)
    return out


def test_files_and_determinism(built, export_path, tmp_path):
    names = sorted(p.name for p in built.iterdir())
    man = json.loads((built / "manifest.json").read_text())
    assert names == sorted([f"{man['network_module']}.v", f"{man['wrapper_module']}.v",
                            "bincount_axis_top.v", "constraints.xdc", "build.tcl", "weights.bin",
                            "classify.py", "reference.json", "reference_images.bin",
                            "manifest.json", "README.md"])
    build_board(args(export_path), tmp_path)
    for name in names:
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes(), name


def test_weight_image_is_stage4_words(built, export_path):
    from bincount.model.export.network_file import load_export

    export = load_export(export_path)
    man = json.loads((built / "manifest.json").read_text())
    words = np.fromfile(built / "weights.bin", dtype="<u4")
    stage4 = next(p for p in man["parts"] if p["name"] == "stage4")
    expect = []
    for layer in stage4["layers"]:
        bp = block_params(export, layer, 4, 4, "stream")
        w = bp.lanes * bp.bits_per_cycle
        assert w <= 32
        expect += bp.weight_words()
    assert words.tolist() == expect and man["weight_load_words"] == len(expect)
    assert [s[0] for s in man["weight_streams"]] == ["w4_0", "w4_1", "w4_2", "w4_3"]


def test_tcl_has_the_block_design(built):
    tcl = (built / "build.tcl").read_text()
    for piece in ["create_project bincount_kv260", BOARDS["kv260"]["part"],
                  "kv260_som", "create_bd_cell -type module -reference bincount_axis_top",
                  "zynq_ultra_ps_e", "axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins bincount_0/s_axis]",
                  "bincount_0/m_axis] [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]",
                  "axi_dma_1/M_AXIS_MM2S] [get_bd_intf_pins bincount_0/s_axis_w]",
                  "PL0_REF_CTRL__FREQMHZ $clock_mhz", "set clock_mhz 100",
                  "validate_bd_design", "make_wrapper", "write_bitstream",
                  "write_hw_platform", "bincount.hwh"]:
        assert piece in tcl, piece
    top = (built / "bincount_axis_top.v").read_text()
    assert "ASSOCIATED_BUSIF s_axis:m_axis:s_axis_w" in top and ".rst(~aresetn)" in top


def test_reference_results(built, export_path):
    from bincount.model.export.network_file import load_export

    ref = json.loads((built / "reference.json").read_text())
    pix = np.fromfile(built / "reference_images.bin", dtype=np.uint8).reshape(-1, 32, 32, 3)
    logits = NetworkReference(load_export(export_path)).run(pix)
    assert [e["logits"] for e in ref["images"]] == logits.tolist()
    assert [e["class"] for e in ref["images"]] == np.argmax(logits, axis=1).tolist()


def test_zcu104_part(export_path, tmp_path):
    build_board(args(export_path, "zcu104", clock_mhz=150, lanes="4", bits_per_cycle="4"),
                tmp_path)
    tcl = (tmp_path / "build.tcl").read_text()
    assert "xczu7ev-ffvc1156-2-e" in tcl and "set clock_mhz 150" in tcl
    assert "board_connections" not in tcl


@pytest.mark.parametrize("change,match", [
    ({"board": "ulx3s"}, "board 'ulx3s' is not a Zynq UltraScale\\+ board"),
    ({"clock_mhz": 900}, "--clock-mhz 900 is out of range"),
    ({"export": "missing.npz"}, "--export 'missing.npz' does not exist"),
    ({"export": "/"}, "--export '/' is a directory; give a bincount-network export"),
    ({"lanes": "4,4"}, "--lanes needs 1 or 4 values"),
    ({"lanes": "x"}, "--lanes needs an integer or 4 comma-separated integers"),
    ({"lanes": "3"}, "^--lanes 3: lanes must be a power of two, got 3"),
])
def test_refusals_write_nothing(export_path, tmp_path, change, match):
    out = tmp_path / "out"
    with pytest.raises(BincountError, match=match):
        build_board(args(export_path, **change), out)
    assert not out.exists()


def test_a_second_build_replaces_the_files(built, export_path, capsys):
    before = {p.name: p.read_bytes() for p in built.iterdir()}
    assert build_board(args(export_path), built) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(before)
    assert {p.name: p.read_bytes() for p in built.iterdir()} == before


@pytest.mark.parametrize("option", [["--seed", "3"], ["--baud", "9600"], ["--stem-lanes", "2"]])
def test_command_line_refuses_ulx3s_options(export_path, tmp_path, capsys, option):
    out = tmp_path / "out"
    assert main(["build", "--board", "kv260", "--export", str(export_path), "-o", str(out),
                 *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{option[0]} does not apply to --board kv260" in err[0]
    assert not out.exists()


def test_resource_parts_split_the_network(built):
    from bincount.hw.zynq_resources import network_parts, total_of, fit_table, wrapper_alone

    man = json.loads((built / "manifest.json").read_text())
    top = man["network_module"]
    text = (built / f"{top}.v").read_text()
    parts = network_parts(text, top)
    assert sorted(parts) == ["head", "stage1", "stage2", "stage3", "stage4", "stem"]
    for part, (module, ptext) in parts.items():
        assert module == f"part_{part}" and ptext.startswith(f"module part_{part}(")
        names = [ln.split()[1] for ln in ptext.splitlines() if ln.startswith("module ")]
        assert all(n.startswith(f"\\{top}.{part}.") for n in names[1:])
        assert ptext.count("endmodule") == len(names) and ptext.rstrip().endswith("endmodule")
    alone = wrapper_alone((built / f"{man['wrapper_module']}.v").read_text(), text, top)
    stub = alone[alone.index("(* blackbox *)"):]
    assert f"module {top}(" in stub and "output o__valid;" in stub and "assign" not in stub
    total = total_of({"a": {"lut": 10, "ff": 4, "carry": 1, "dsp": 2, "bram": 3, "uram": 1},
                      "b": {"lut": 5, "ff": 1, "carry": 0, "dsp": 0, "bram": 2, "uram": 0}})
    assert total == {"lut": 15, "ff": 5, "carry": 1, "dsp": 2, "bram": 5, "uram": 1,
                     "bram36": 2.5}
    fits = fit_table(dict(total, bram36=145), boards=("kv260", "zcu104"))
    assert fits["kv260"]["bram36"] == (145, 144, 100.7) and not fits["kv260"]["fits"]
    assert fits["zcu104"]["fits"]
