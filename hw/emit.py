"""Verilog emission with a JSON port manifest beside each ``.v``.

:func:`verilog_text` converts a component with ``amaranth.back.verilog.convert`` without source
locations, so the text depends only on the parameters and the tool versions (same inputs, same
bytes, on any machine and checkout path). :func:`manifest` describes the top module::

    {"module", "block", "parameters": {...},
     "ports": [{"name", "direction", "width", "signed", "meaning"}, ...],
     "latency", "clock": "clk", "reset": "rst (synchronous, active high)",
     "generator": "bincount <version>"}

Port names are the Verilog names (Amaranth joins nested signature members with ``__``).

:func:`emit` (``block, **params`` -> ``(verilog_text, manifest)``) works in memory;
:func:`emit_block` also writes ``<module>.v`` and ``<module>.json`` atomically, both or neither
(:func:`write_files`).
"""

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from bincount import __version__
from bincount.fileio import ensure_dir
from bincount.hw.blocks import build_block
from bincount.hw.output_dir import write_all_or_none
from bincount.hw.ports import port_map

__all__ = ["wrap_long_lines", "verilog_text", "signature_ports", "manifest", "emit_component",
           "emit", "write_files", "emit_block", "CLOCK_DOC", "RESET_DOC"]

CLOCK_DOC = "clock: every register updates on the rising edge"
RESET_DOC = ("synchronous reset, active high: clears the valid pipeline (out_valid low); "
             "data registers are not reset")


#: Verilator's preprocessor stops at 40,000 tokens on one line ("Too many preprocessor tokens on
#: a line"); a wide concatenation in generated Verilog can exceed it. Longer lines are wrapped.
_LONG_LINE = 20000


def wrap_long_lines(verilog: str, limit: int = _LONG_LINE) -> str:
    """Break Verilog lines longer than ``limit`` characters after commas (whitespace only).

    Lines holding a string literal or a comment are left alone, so the meaning of the text
    never changes.
    """
    out = []
    for line in verilog.split("\n"):
        if len(line) <= limit or '"' in line or "//" in line or "/*" in line:
            out.append(line)
            continue
        pieces, current = [], []
        size = 0
        for part in line.split(", "):
            current.append(part)
            size += len(part) + 2
            if size > 2000:
                pieces.append(", ".join(current))
                current, size = [], 0
        if current:
            pieces.append(", ".join(current))
        out.append(",\n    ".join(pieces))
    return "\n".join(out)


def verilog_text(component, name, header=None):
    """Verilog for ``component`` with top module ``name``; ``header`` lines become comments.

    Lines longer than Verilator's preprocessor accepts are wrapped (:func:`wrap_long_lines`).
    """
    text = wrap_long_lines(verilog.convert(component, name=name, emit_src=False))
    if header:
        text = "".join(f"// {line}\n" for line in header) + text
    return text


def signature_ports(component):
    """Manifest entries of the ports of ``component``'s signature (clock and reset apart)."""
    ports = []
    for path, member, value in component.signature.flatten(component):
        shape = Shape.cast(member.shape)
        name = "__".join(map(str, path))
        ports.append({
            "name": name,
            "direction": "input" if member.flow == wiring.In else "output",
            "width": shape.width,
            "signed": shape.signed,
            "meaning": getattr(component, "port_doc", {}).get(name, ""),
        })
    return ports


def manifest(component, name, block, parameters, text=None):
    """The manifest dict of ``component`` emitted as module ``name``.

    With ``text`` (the Verilog), the port list is checked against the module's declarations.
    """
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False, "meaning": CLOCK_DOC},
        {"name": "rst", "direction": "input", "width": 1, "signed": False, "meaning": RESET_DOC},
    ] + signature_ports(component)
    if text is not None:
        declared = port_map(text, name)
        listed = {p["name"]: (p["direction"], p["width"]) for p in ports}
        if declared != listed:
            raise RuntimeError(f"manifest ports {listed} differ from Verilog ports {declared} "
                               f"of module {name!r}")
    return {
        "module": name,
        "block": block,
        "parameters": dict(parameters),
        "ports": ports,
        "latency": component.latency,
        "clock": "clk",
        "reset": "rst (synchronous, active high)",
        "generator": f"bincount {__version__}",
    }


def emit_component(component, name, *, block, parameters):
    """Verilog text and manifest of ``component`` as module ``name`` (nothing written)."""
    header = [f"bincount {__version__}: block {block}, parameters "
              f"{json.dumps(parameters, sort_keys=True)}",
              f"ports, latency and encodings: {name}.json"]
    text = verilog_text(component, name, header=header)
    return text, manifest(component, name, block, parameters, text=text)


def emit(block, **params):
    """Build registry block ``block`` with ``params``; return ``(verilog_text, manifest)``.

    Nothing is written. Raises :class:`~bincount.errors.BincountError` for a bad block name
    or parameter (see :func:`bincount.hw.blocks.build_block`).
    """
    built = build_block(block, **params)
    return emit_component(built.component, built.module, block=built.name,
                          parameters=built.parameters)


def write_files(out_dir, text, info):
    """Write ``out_dir/<module>.v`` and ``out_dir/<module>.json`` both or neither
    (:func:`~bincount.hw.output_dir.write_all_or_none`: earlier files of those names stay as
    they were when either cannot be written); return both paths."""
    name = info["module"]
    write_all_or_none(out_dir, {f"{name}.v": text, f"{name}.json": json.dumps(info, indent=2)
                                + "\n"})
    return Path(out_dir) / f"{name}.v", Path(out_dir) / f"{name}.json"


def emit_block(block, out_dir, **params):
    """Build registry block ``block`` with ``params`` and write its ``.v`` and ``.json`` into
    ``out_dir``; return both paths.

    The parameters are checked first, then the output directory (created if needed), and only
    then is the (slow) conversion run, so bad input leaves nothing behind.
    """
    built = build_block(block, **params)
    ensure_dir(out_dir)
    text, info = emit_component(built.component, built.module, block=built.name,
                                parameters=built.parameters)
    return write_files(out_dir, text, info)
