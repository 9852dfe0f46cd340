"""Verilog of the whole network behind AXI4-Stream (:class:`~bincount.gateware.axis_network.
AxisNetwork`), with its weight-store load image and a Vivado top.

:func:`axis_design` returns three Verilog texts that are read together:

- the network (``bincount_network_{form}_{digest}``, :func:`bincount.hw.designs.network_design`,
  through the build layer's store), with the stages of ``stream_stages`` in their
  streamed-weight form;
- the wrapper ``bincount_axis_{digest}`` (same digest): the AXI4-Stream ports and the weight
  store of the streamed stages, instantiating the network by name
  (:class:`~bincount.gateware.network_instance.NetworkInstance`);
- :data:`TOP_MODULE` (:func:`vivado_top`): ``aclk`` / ``aresetn`` with the interface attributes
  Vivado's module reference reads, instantiating the wrapper.

and the load image of the weight store (32-bit words, :func:`~bincount.gateware.weight_store.
load_image` of every streamed block's :meth:`~bincount.gateware.block_params.BlockParams.
weight_words`, stage order, block order).
"""

import json
import re

import numpy as np

from bincount import __version__
from bincount.gateware.axis_network import WORD_BITS, AxisNetwork
from bincount.gateware.block_params import block_params
from bincount.gateware.head_engine import HeadParams
from bincount.gateware.network_instance import NetworkInstance
from bincount.gateware.weight_store import load_image
from bincount.hw.designs import network_design
from bincount.hw.emit import verilog_text
from bincount.model.export.network_file import export_meta

__all__ = ["axis_design", "vivado_top", "TOP_MODULE", "image_bytes"]

#: Module name of the Vivado top (the block design's module reference).
TOP_MODULE = "bincount_axis_top"


def image_bytes(export):
    """Input bytes per image: ``H * W * 3`` of the export's input."""
    inp = export_meta(export)["input"]
    return int(inp["size"]) ** 2 * int(inp["channels"])


def axis_design(export, knobs=None, stream_stages=(4,), cache_dir=None):
    """``dict`` with ``network_verilog``, ``network_manifest``, ``wrapper_verilog``,
    ``wrapper_module``, ``top_verilog``, ``weight_streams`` (``[(port, words, bits)]``),
    ``load_words`` (the store's load image, a ``uint32`` array), ``image_bytes``,
    ``result_words``, ``classes`` and ``logit_bits``; ``knobs`` as
    :func:`~bincount.hw.designs.network_design` (lanes, bits_per_cycle, stem_lanes)."""
    knobs = dict(knobs or {})
    stream_stages = sorted(int(s) for s in stream_stages)
    if stream_stages:
        knobs["weights"] = ["stream" if s in stream_stages else "memory" for s in (1, 2, 3, 4)]
    text, manifest = network_design(export, knobs, cache_dir=cache_dir)
    name = manifest["module"]
    parts = {p["name"]: p for p in manifest["parts"]}
    streams, blocks = [], []
    for s in stream_stages:
        part = parts[f"stage{s}"]
        for j, layer in enumerate(part["layers"]):
            bp = block_params(export, layer, part["lanes"], part["bits_per_cycle"], "stream")
            words = bp.weight_words()
            streams.append((f"w{s}_{j}", len(words), bp.lanes * bp.bits_per_cycle))
            blocks.append(words)
    head = HeadParams(export, parts["head"]["lanes"])
    nbytes = image_bytes(export)
    core = NetworkInstance(name, head.result_layout, [(n, w) for n, _, w in streams])
    wrapper = AxisNetwork(core, head.result_layout, nbytes, streams)
    wname = "bincount_axis_" + name.rsplit("_", 1)[-1]
    header = [f"bincount {__version__}: AXI4-Stream wrapper of {name}",
              f"image {nbytes} bytes in {nbytes // 4} words; result {wrapper.result_words} "
              f"words; streamed weights {json.dumps([list(s) for s in streams])}"]
    wtext = ultra_store(verilog_text(wrapper, wname, header=header), f"{wname}.store")
    words = np.array(load_image(blocks, streams[0][2], WORD_BITS) if streams else [],
                     dtype=np.uint32)
    return {"network_verilog": text, "network_manifest": manifest, "wrapper_verilog": wtext,
            "wrapper_module": wname, "top_verilog": vivado_top(wname, bool(streams)),
            "weight_streams": streams, "load_words": words, "image_bytes": nbytes,
            "result_words": wrapper.result_words, "classes": head.classes,
            "logit_bits": head.logit_bits}


_ZERO_INIT = re.compile(r"^  initial begin\n(?:    (\w+)\[\d+\] = \d+'h0+;\n)+  end\n", re.M)
_MEM_REG = re.compile(r"^(  )(reg \[\d+:0\] mem\d+ \[\d+:0\];)$", re.M)


def ultra_store(text, module):
    """The Verilog ``text`` with the weight store's memories (in ``module``) marked
    ``(* ram_style = "ultra" *)`` and their all-zero initial blocks removed: an UltraRAM has no
    initial contents, and Vivado maps a memory with an ``initial`` block to block RAM. The
    store is never read before it is loaded, so nothing depends on the removed zeros."""
    start = text.index(f"module \\{module} ")
    end = text.index("endmodule", start)
    body = _ZERO_INIT.sub("", text[start:end])
    body = _MEM_REG.sub(r'\1(* ram_style = "ultra" *)\n\1\2', body)
    return text[:start] + body + text[end:]


def _axis(prefix, slave, ports):
    mode = "slave" if slave else "master"
    lines = []
    for sig, direction, width in ports:
        rng = f" [{width - 1}:0]" if width > 1 else ""
        lines.append(f'    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 {prefix} '
                     f'{sig.upper()}" *)')
        if sig == "tdata":
            lines.insert(len(lines) - 1,
                         f'    (* X_INTERFACE_MODE = "{mode}" *)')
        lines.append(f"    {direction}{rng} {prefix}_{sig},")
    return lines


def vivado_top(wrapper, weights):
    """Verilog of :data:`TOP_MODULE`: ``aclk`` (clock of every interface), ``aresetn``
    (active low, synchronous to ``aclk``; the wrapper's ``rst`` is its inverse), the image,
    result and (``weights``) weight streams as AXI4-Stream interfaces, and the
    ``weights_loaded`` status."""
    busif = "s_axis:m_axis" + (":s_axis_w" if weights else "")
    lines = [f"// bincount {__version__}: Vivado top of {wrapper} (module reference)",
             f"module {TOP_MODULE} (",
             '    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)',
             f'    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {busif}, '
             f'ASSOCIATED_RESET aresetn" *)',
             "    input aclk,",
             '    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)',
             '    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)',
             "    input aresetn,"]
    lines += _axis("s_axis", True, [("tdata", "input", 32), ("tvalid", "input", 1),
                                    ("tready", "output", 1), ("tlast", "input", 1)])
    if weights:
        lines += _axis("s_axis_w", True, [("tdata", "input", 32), ("tvalid", "input", 1),
                                          ("tready", "output", 1), ("tlast", "input", 1)])
    lines += _axis("m_axis", False, [("tdata", "output", 32), ("tvalid", "output", 1),
                                     ("tready", "input", 1), ("tlast", "output", 1)])
    lines.append("    output weights_loaded")
    lines.append(");")
    conns = ["        .clk(aclk),", "        .rst(~aresetn),"]
    names = ["s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"]
    if weights:
        names += ["s_axis_w_tdata", "s_axis_w_tvalid", "s_axis_w_tready", "s_axis_w_tlast",
                  "weights_loaded"]
    conns += [f"        .{n}({n})," for n in names]
    conns[-1] = conns[-1].rstrip(",")
    lines += [f"    {wrapper} core (", *conns, "    );"]
    if not weights:
        lines.append("    assign weights_loaded = 1'b1;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
