"""Zynq UltraScale+ board build (Kria KV260, ZCU104): the whole network behind AXI4-Stream with
an AXI DMA to the processing system, as a Vivado project made by one Tcl script.

``build_board(args, out_dir)`` writes into ``out_dir`` (all files or none; files of an earlier
build are replaced, as for every board):

==========================  ===================================================================
``<network>.v``             the network (:mod:`bincount.hw.network_emit`; stage 4 in its
                            streamed-weight form, :data:`STREAM_STAGES`)
``<wrapper>.v``             the AXI4-Stream wrapper with the weight store
                            (:mod:`bincount.gateware.axis_network`)
``bincount_axis_top.v``     the block design's module reference (``aclk``, ``aresetn``)
``constraints.xdc``         constraints (the clock is the PS's ``pl_clk0``, constrained by the
                            PS IP; bitstream settings)
``build.tcl``               ``vivado -mode batch -source build.tcl``: project, block design
                            (PS, two AXI DMAs, interconnect, reset), validation, wrapper,
                            synthesis, implementation, ``bincount.bit`` / ``.hwh`` / ``.xsa``
``weights.bin``             the weight store's load image (little-endian 32-bit words)
``classify.py``             PYNQ host script (``hw/host/classify.py``)
``reference.json``          class and logits of the integer reference for the sample images
``reference_images.bin``    those images' bytes (``uint8 [N, 32, 32, 3]``, 3072 bytes each)
``resources.json`` / ``.md``  Yosys ``synth_xilinx -family xcup`` resources against the device
``README.md``               what each file is, how to build and run it, what was not run here
==========================  ===================================================================

Weights: stages 1-3, the stem and the head keep theirs in initialised block RAM / LUT ROMs;
stage 4 (8.26 Mbit at full width) does not fit the block RAM of either device with the rest, so
its weights live in loadable memories (URAM288: an UltraRAM cannot be initialised by the
bitstream) that the host fills once after the bitstream is loaded, through a second DMA.

``args``: ``board`` (``kv260`` or ``zcu104``), ``export`` (path or None: a ReActNet-18 at full
width, calibrated on the bundled sample images, not trained), ``lanes`` / ``bits_per_cycle``
(an int, 4 ints, the text ``"P"`` or ``"P1,P2,P3,P4"`` as ``generate network`` takes it; None:
the network's defaults), ``clock_mhz`` (None: :data:`DEFAULT_CLOCK_MHZ`); ``seed``,
``baud`` and ``stem_lanes`` (options of the ULX3S) must be None; optional ``resources`` (default True: run the Yosys resource count; cached by content).
"""

import json
from pathlib import Path

import numpy as np

from bincount import __version__
from bincount.errors import BincountError
from bincount.fileio import check_outputs
from bincount.hw.axis_emit import TOP_MODULE, axis_design
from bincount.hw.cache import default_cache_dir
from bincount.hw.network_cli import check_given_knobs, parse_ints
from bincount.hw.output_dir import check_output_dir, write_all_or_none
from bincount.hw.zynq_resources import CLASSES, DEVICES, design_resources, fit_table
from bincount.model.data.cifar import load_test_images
from bincount.model.export.network_file import load_export
from bincount.model.export.network_golden import network_golden
from bincount.model.export.network_reference import NetworkReference

__all__ = ["build_board", "BOARDS", "STREAM_STAGES", "DEFAULT_CLOCK_MHZ", "build_tcl",
           "constraints_xdc", "resources_table", "SAMPLE_IMAGES"]

#: Stages whose weights go to the loadable store.
STREAM_STAGES = (4,)
#: PL clock from the PS (``pl_clk0``).
DEFAULT_CLOCK_MHZ = 100.0
#: Sample images in ``reference.json``.
SAMPLE_IMAGES = 4

#: Board -> Vivado part, board part (VLNV prefix; the newest installed version is taken) and
#: the SOM carrier connection (KV260).
BOARDS = {
    "kv260": {"part": "xck26-sfvc784-2LV-c", "board_part": "xilinx.com:kv260_som:part0",
              "connection": ("som240_1_connector", "xilinx.com:kv260_carrier:som240_1_connector"),
              "name": "Kria KV260 Starter Kit"},
    "zcu104": {"part": "xczu7ev-ffvc1156-2-e", "board_part": "xilinx.com:zcu104:part0",
               "connection": None, "name": "Zynq UltraScale+ MPSoC ZCU104"},
}

HOST_SCRIPT = Path(__file__).parent / "host" / "classify.py"


def _check_args(args):
    board = getattr(args, "board", None)
    if board not in BOARDS:
        raise BincountError(f"board {board!r} is not a Zynq UltraScale+ board of this build; "
                            f"expected one of {', '.join(BOARDS)}")
    for option in ("seed", "baud", "stem_lanes"):
        if getattr(args, option, None) is not None:
            raise BincountError(f"--{option.replace('_', '-')} does not apply to --board "
                                f"{board} (a Vivado project, the host talks AXI DMA); its "
                                f"options are --export --clock-mhz --lanes --bits-per-cycle -o")
    clock = getattr(args, "clock_mhz", None)
    clock = DEFAULT_CLOCK_MHZ if clock is None else clock
    try:
        clock = float(clock)
    except (TypeError, ValueError):
        raise BincountError(f"--clock-mhz needs a number, got {clock!r}") from None
    if not 10.0 <= clock <= 333.0:
        raise BincountError(f"--clock-mhz {clock:g} is out of range; the PS's pl_clk0 gives "
                            f"10 to 333 MHz")
    knobs = {}
    for key in ("lanes", "bits_per_cycle"):
        v = getattr(args, key, None)
        if isinstance(v, str):              # as typed: "8" or "8,8,8,8"
            v = parse_ints(key.replace("_", "-"), v)
        if v is not None:
            knobs[key] = v
    return board, clock, knobs


def _load_network(export_path):
    """``(export, source text)``: the given export, or the calibrated full-width network."""
    if export_path is not None:
        return load_export(export_path), f"export {Path(export_path).name}"
    export, _ = network_golden("binarized", 1.0, seed=1, test_images=1)
    return export, ("ReActNet-18 at full width (width 1.0), binarized counting form, concat "
                    "shortcut, random weights calibrated on 16 bundled CIFAR-10 test images "
                    "(seed 1): NOT a trained network, its classes are not meaningful")


def _reference(export):
    """``(pixels uint8 [N,32,32,3], {"images": [...]})`` of the first bundled test images."""
    pixels, labels = load_test_images(count=SAMPLE_IMAGES)
    logits = NetworkReference(export).run(pixels)
    return pixels, {"images": [
        {"index": k, "label": int(labels[k]), "class": int(np.argmax(logits[k])),
         "logits": [int(v) for v in logits[k]]} for k in range(len(pixels))]}


def constraints_xdc(board, clock_mhz):
    """The XDC: the PL clock comes from the PS (its IP constrains ``pl_clk0``); no pins."""
    return "\n".join([
        f"# bincount {__version__}: constraints of the {BOARDS[board]['name']} build",
        f"# The design's only clock is the PS's pl_clk0 at {clock_mhz:g} MHz: the Zynq",
        "# UltraScale+ PS IP writes its create_clock, so none is repeated here. The design has",
        "# no package pins: images, weights and results move through the AXI DMAs.",
        "set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]",
        "set_property BITSTREAM.CONFIG.UNUSEDPIN PULLNONE [current_design]",
        ""])


def build_tcl(board, clock_mhz, rtl_files, weights):
    """The Vivado Tcl script (module docstring); ``rtl_files`` in read order."""
    b = BOARDS[board]
    dmas = ["axi_dma_0"] + (["axi_dma_1"] if weights else [])
    files = " ".join(f"$here/{f}" for f in rtl_files)
    lines = [
        f"# bincount {__version__}: Vivado project of the {b['name']} build",
        "# Run: vivado -mode batch -source build.tcl   (in this folder; about 1-2 hours)",
        "# Writes vivado/ (project) and bincount.bit, bincount.hwh, bincount.xsa here.",
        "set here [file dirname [file normalize [info script]]]",
        f"set part {b['part']}",
        f"set clock_mhz {clock_mhz:g}",
        f"create_project bincount_{board} $here/vivado -part $part -force",
        f"set bp [lindex [lsort [get_board_parts -quiet {b['board_part']}:*]] end]",
        "if {$bp ne \"\"} {",
        "    set_property board_part $bp [current_project]",
    ]
    if b["connection"]:
        lines += [
            f"    set carrier [lindex [lsort [get_board_parts -quiet "
            f"{b['connection'][1]}:*]] end]",
            "    if {$carrier ne \"\"} {",
            f"        set_property board_connections [list {b['connection'][0]} $carrier] "
            f"[current_project]",
            "    }",
        ]
    lines += [
        "} else {",
        f"    puts \"bincount: board files {b['board_part']} not installed; using part $part "
        f"without the board preset\"",
        "}",
        f"add_files -norecurse [list {files}]",
        f"set_property top {TOP_MODULE} [current_fileset]",
        "update_compile_order -fileset sources_1",
        "create_bd_design bincount",
        f"create_bd_cell -type module -reference {TOP_MODULE} bincount_0",
        "create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0",
        "if {$bp ne \"\"} {",
        "    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e "
        "-config {apply_board_preset \"1\"} [get_bd_cells zynq_ultra_ps_e_0]",
        "}",
        "set_property -dict [list \\",
        "    CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__MAXIGP0__DATA_WIDTH {32} \\",
        "    CONFIG.PSU__USE__M_AXI_GP1 {0} CONFIG.PSU__USE__M_AXI_GP2 {0} \\",
        "    CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__SAXIGP2__DATA_WIDTH {64} \\",
        "    CONFIG.PSU__FPGA_PL0_ENABLE {1} \\",
        "    CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz \\",
        "] [get_bd_cells zynq_ultra_ps_e_0]",
    ]
    for d in dmas:
        s2mm = "1" if d == "axi_dma_0" else "0"
        lines += [
            f"create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma {d}",
            "set_property -dict [list CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} "
            "CONFIG.c_include_mm2s {1} CONFIG.c_m_axis_mm2s_tdata_width {32} "
            f"CONFIG.c_mm2s_burst_size {{16}} CONFIG.c_include_s2mm {{{s2mm}}}] "
            f"[get_bd_cells {d}]",
        ]
    lines += [
        "connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] "
        "[get_bd_intf_pins bincount_0/s_axis]",
        "connect_bd_intf_net [get_bd_intf_pins bincount_0/m_axis] "
        "[get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]",
    ]
    if weights:
        lines.append("connect_bd_intf_net [get_bd_intf_pins axi_dma_1/M_AXIS_MM2S] "
                     "[get_bd_intf_pins bincount_0/s_axis_w]")
    clk = "/zynq_ultra_ps_e_0/pl_clk0"
    for d in dmas:
        lines.append(
            "apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master "
            f"{{{clk}}} Clk_slave {{Auto}} Clk_xbar {{Auto}} Master "
            "{/zynq_ultra_ps_e_0/M_AXI_HPM0_FPD} Slave "
            f"{{/{d}/S_AXI_LITE}} ddr_seg {{Auto}} intc_ip {{Auto}} master_apm {{0}}] "
            f"[get_bd_intf_pins {d}/S_AXI_LITE]")
    masters = ["axi_dma_0/M_AXI_MM2S", "axi_dma_0/M_AXI_S2MM"] + \
        (["axi_dma_1/M_AXI_MM2S"] if weights else [])
    for mst in masters:
        lines.append(
            "apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master "
            f"{{Auto}} Clk_slave {{{clk}}} Clk_xbar {{{clk}}} Master {{/{mst}}} Slave "
            "{/zynq_ultra_ps_e_0/S_AXI_HP0_FPD} ddr_seg {Auto} intc_ip {Auto} "
            f"master_apm {{0}}] [get_bd_intf_pins {mst}]")
    lines += [
        "apply_bd_automation -rule xilinx.com:bd_rule:clkrst "
        f"-config [list Clk {{{clk}}}] [get_bd_pins bincount_0/aclk]",
        "if {[llength [get_bd_nets -quiet -of_objects [get_bd_pins bincount_0/aresetn]]] "
        "== 0} {",
        "    set rst [lindex [get_bd_cells -filter {VLNV =~ \"*proc_sys_reset*\"}] 0]",
        "    connect_bd_net [get_bd_pins $rst/peripheral_aresetn] "
        "[get_bd_pins bincount_0/aresetn]",
        "}",
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
        "set bd [get_files bincount.bd]",
        "generate_target all $bd",
        "make_wrapper -files $bd -top -import",
        "set_property top bincount_wrapper [current_fileset]",
        "update_compile_order -fileset sources_1",
        "add_files -fileset constrs_1 -norecurse $here/constraints.xdc",
        "launch_runs impl_1 -to_step write_bitstream -jobs 4",
        "wait_on_run impl_1",
        "if {[get_property PROGRESS [get_runs impl_1]] ne \"100%\"} {",
        "    error \"bincount: implementation did not finish; see vivado/*.runs/impl_1\"",
        "}",
        "open_run impl_1",
        "report_utilization -file $here/utilization.rpt",
        "report_timing_summary -file $here/timing.rpt",
        "if {[get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]] < 0} {",
        "    puts \"bincount: timing NOT met at $clock_mhz MHz (timing.rpt); the bitstream is "
        "written anyway\"",
        "}",
        "file copy -force [get_property DIRECTORY [get_runs impl_1]]/bincount_wrapper.bit "
        "$here/bincount.bit",
        "set hwh [lindex [glob -nocomplain $here/vivado/*.gen/sources_1/bd/bincount/hw_handoff/"
        "bincount.hwh $here/vivado/*.srcs/sources_1/bd/bincount/hw_handoff/bincount.hwh] 0]",
        "file copy -force $hwh $here/bincount.hwh",
        "write_hw_platform -fixed -include_bit -force -file $here/bincount.xsa",
        "puts \"bincount: wrote bincount.bit, bincount.hwh, bincount.xsa\"",
    ]
    return "\n".join(lines) + "\n"


def resources_table(res, fits, seconds=False):
    """Markdown tables of :func:`~bincount.hw.zynq_resources.design_resources` ``res`` (per
    part and total) and of ``fits`` (:func:`~bincount.hw.zynq_resources.fit_table`);
    ``seconds`` adds each part's Yosys wall time (not in the build's files: they are the same
    bytes whether or not the synthesis came from the cache)."""
    unit = {"lut": "LUT", "ff": "FF", "bram36": "BRAM36", "uram": "URAM288", "dsp": "DSP48E2"}
    lines = ["| part | LUT | FF | CARRY | BRAM36 | URAM288 | DSP48E2 |" +
             (" Yosys s |" if seconds else ""),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if seconds else "")]
    for part, r in res["parts"].items():
        lines.append(f"| {part} | {r['lut']:,} | {r['ff']:,} | {r['carry']:,} | "
                     f"{r['bram'] / 2:g} | {r.get('uram', 0)} | {r['dsp']} |" +
                     (f" {r.get('seconds') or 0:.0f} |" if seconds else ""))
    t = res["total"]
    lines.append(f"| **total** | **{t['lut']:,}** | **{t['ff']:,}** | {t['carry']:,} | "
                 f"**{t['bram36']:g}** | **{t['uram']}** | **{t['dsp']}** |" +
                 (" |" if seconds else ""))
    lines += ["", "| device | " + " | ".join(unit[k] for k, _ in CLASSES) + " | fits |",
              "| --- | " + " | ".join("---:" for _ in CLASSES) + " | --- |"]
    for b, row in fits.items():
        cells = [f"{row[k][0]:,g} / {row[k][1]:,} ({row[k][2]:g} %)" for k, _ in CLASSES]
        lines.append(f"| {DEVICES[b]['device']} ({b}) | " + " | ".join(cells) +
                     f" | {'yes' if row['fits'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def build_board(args, out_dir):
    """Write the board build of ``args`` into ``out_dir`` (module docstring; its files are
    replaced, as every board's), print the written paths; returns the exit status 0."""
    for path in write_board(args, out_dir):
        print(path)
    return 0


def write_board(args, out_dir):
    """The work of :func:`build_board`; returns the list of written paths."""
    board, clock, knobs = _check_args(args)
    out_dir = check_output_dir(out_dir)
    export_path = getattr(args, "export", None)
    if export_path is not None and not Path(export_path).is_file():
        what = "is a directory" if Path(export_path).is_dir() else "does not exist"
        raise BincountError(f"--export {str(export_path)!r} {what}; give a "
                            f"bincount-network export (.npz)")
    export, source = _load_network(export_path)
    if knobs:
        check_given_knobs(export, knobs)
    design = axis_design(export, knobs, STREAM_STAGES, cache_dir=default_cache_dir("verilog"))
    net_name = design["network_manifest"]["module"]
    rtl = [f"{net_name}.v", f"{design['wrapper_module']}.v", f"{TOP_MODULE}.v"]
    names = rtl + ["constraints.xdc", "build.tcl", "weights.bin", "classify.py",
                   "reference.json", "reference_images.bin", "manifest.json", "README.md"]
    do_res = getattr(args, "resources", True)
    if do_res:
        names += ["resources.json", "resources.md"]
    check_outputs([("-o", Path(out_dir) / n) for n in names], force=True,
                  inputs=[("--export", export_path)])
    pixels, ref = _reference(export)
    weights = bool(design["weight_streams"])
    files = {
        rtl[0]: design["network_verilog"], rtl[1]: design["wrapper_verilog"],
        rtl[2]: design["top_verilog"],
        "constraints.xdc": constraints_xdc(board, clock),
        "build.tcl": build_tcl(board, clock, rtl, weights),
        "weights.bin": design["load_words"].astype("<u4").tobytes(),
        "classify.py": HOST_SCRIPT.read_text(encoding="utf-8"),
        "reference.json": json.dumps(ref, indent=1) + "\n",
        "reference_images.bin": np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(),
    }
    manifest = {"board": board, "part": BOARDS[board]["part"], "clock_mhz": clock,
                "network": source, "network_module": net_name,
                "wrapper_module": design["wrapper_module"], "top_module": TOP_MODULE,
                "stream_stages": list(STREAM_STAGES),
                "weight_streams": [list(s) for s in design["weight_streams"]],
                "weight_load_words": int(design["load_words"].size),
                "image_bytes": design["image_bytes"], "result_words": design["result_words"],
                "classes": design["classes"], "logit_bits": design["logit_bits"],
                "ideal_cycles_per_image": design["network_manifest"]["ideal_cycles"],
                "images_per_second_ideal": round(
                    clock * 1e6 / design["network_manifest"]["ideal_cycles"], 1),
                "parts": design["network_manifest"]["parts"], "generator":
                f"bincount {__version__}"}
    files["manifest.json"] = json.dumps(manifest, indent=1) + "\n"
    res = fits = None
    if do_res:
        res = design_resources(design)
        fits = fit_table(res["total"])
        summary = {"board": board, "network_module": net_name,
                   "command": "synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf, "
                              "one run per part",
                   "yosys": next(iter(res["parts"].values()))["yosys"],
                   "parts": {p: {k: r.get(k) for k in ("lut", "ff", "carry", "dsp", "bram",
                                                       "uram", "lut_logic", "other_cells",
                                                       )}
                             for p, r in res["parts"].items()},
                   "total": res["total"],
                   "devices": {b: {"capacity": {k: DEVICES[b][k] for k, _ in CLASSES},
                                   "used": {k: fits[b][k][0] for k, _ in CLASSES},
                                   "percent": {k: fits[b][k][2] for k, _ in CLASSES},
                                   "fits": fits[b]["fits"]} for b in fits}}
        files["resources.json"] = json.dumps(summary, indent=1) + "\n"
        files["resources.md"] = ("# Resources (Yosys `synth_xilinx -family xcup -uram`, out of "
                                 "context, one run per part; the total is their sum)\n\n" +
                                 resources_table(res, fits))
    files["README.md"] = _readme(board, clock, manifest, design, fits)
    write_all_or_none(out_dir, files)
    return [Path(out_dir) / n for n in files]


def _readme(board, clock, manifest, design, fits):
    b = BOARDS[board]
    lines = [
        f"# bincount on the {b['name']}",
        "",
        f"Generated by bincount {__version__}. Network: {manifest['network']}.",
        "",
    ]
    if fits is not None and not fits[board]["fits"]:
        ok = [bb for bb, row in fits.items() if row["fits"]]
        lines += [f"**By the Yosys count this design does not fit the {DEVICES[board]['device']}"
                  f"** (`resources.md`)" + (f"; it fits the {', '.join(ok)} build "
                                            f"(`--board {ok[0]}`)." if ok else "."), ""]
    lines += [
        "## What was run and what was not",
        "",
        "- Checked by bincount: the project's test suite simulates this AXI4-Stream design",
        "  (cocotb + Verilator, `sim/test_axis_network.py`, at width 0.0625) and compares class",
        "  and logits with the integer reference; the Yosys resource count is in `resources.md`",
        "  (when the build ran it); the weight image and `reference.json` come from the same",
        "  export as the Verilog.",
        "- **Not run by bincount**: Vivado (`build.tcl` has never been executed by the",
        "  project's build machine, which has no Vivado), and nothing has run on a board.",
        f"  Timing closure at {clock:g} MHz is therefore not known.",
        "",
        "## Files",
        "",
        f"- `{manifest['network_module']}.v`: the network; `{manifest['wrapper_module']}.v`:",
        "  its AXI4-Stream wrapper and weight store; `bincount_axis_top.v`: the module",
        "  reference of the block design (`aclk`, `aresetn`).",
        "- `constraints.xdc`, `build.tcl`: the Vivado project (see below).",
        f"- `weights.bin`: {manifest['weight_load_words']:,} little-endian 32-bit words, the",
        f"  weights of stage(s) {', '.join(map(str, manifest['stream_stages']))} for the",
        "  loadable memories (UltraRAM cannot be initialised by the bitstream).",
        "- `classify.py`: PYNQ host script; `reference.json`, `reference_images.bin`: sample",
        "  images and the integer reference's class and logits for them.",
        "- `manifest.json`: ports, knobs, cycles; `resources.json` / `resources.md`: Yosys",
        "  resources against the devices.",
        "",
        "## Build (Vivado 2022.2 or later, with the board files installed)",
        "",
        "    vivado -mode batch -source build.tcl",
        "",
        f"Creates `vivado/` (part {b['part']}; board part {b['board_part']} when installed),",
        "a block design with the Zynq UltraScale+ PS (`pl_clk0` at "
        f"{clock:g} MHz, HPM0 for control, HP0 for data), `axi_dma_0` (MM2S -> `s_axis`,",
        "`m_axis` -> S2MM, images and results), `axi_dma_1` (MM2S -> `s_axis_w`, weights),",
        "interconnect and reset; validates it, makes the wrapper, runs synthesis and",
        "implementation and writes `bincount.bit`, `bincount.hwh`, `bincount.xsa`,",
        "`utilization.rpt` and `timing.rpt` here.",
        "",
        "## Run (PYNQ)",
        "",
        "Copy `bincount.bit`, `bincount.hwh`, `weights.bin`, `classify.py`, `reference.json`",
        "and `reference_images.bin` to the board, then:",
        "",
        "    python3 classify.py --check            # the sample images vs the reference",
        "    python3 classify.py image.png ...      # 32x32 RGB PNG/JPEG",
        "",
        "It loads the overlay, sends `weights.bin` once through `axi_dma_1`, then each image",
        "(3,072 bytes, 768 words, `tlast` on the last) through `axi_dma_0` and reads 11 result",
        "words: word 0 = class (bits 7:0), short / long frame flags (bits 8, 9), frame number",
        "(bits 31:16); words 1-10 = the logits, sign-extended.",
        "",
        f"Ideal throughput: {manifest['ideal_cycles_per_image']:,} cycles per image, "
        f"{manifest['images_per_second_ideal']:,} images/s at {clock:g} MHz (not measured",
        "on a board).",
        "",
    ]
    if fits is not None:
        lines += ["## Does it fit?", ""]
        for bb, row in fits.items():
            short = [lab for k, lab in CLASSES if row[k][0] > row[k][1]]
            lines.append(f"- {DEVICES[bb]['device']} ({bb}): " + (
                "fits (Yosys estimate)." if row["fits"] else
                f"does **not** fit: {', '.join(short)} over capacity."))
        lines += ["", "Figures: `resources.md` (Yosys counts; Vivado's will differ).", ""]
    return "\n".join(lines) + "\n"
