"""The Verilog port parser: the ports of one module of a Verilog text.

Reads both ANSI headers (``module m(input [7:0] a, ...)``) and declarations in the body
(``input [7:0] a;`` as Amaranth writes them); constant ranges only. Used for the manifests
(checked against the Verilog), the registered-I/O harness of the Fmax flow and the public-port
list of the Verilator builds.

- :func:`verilog_ports`: ``[(direction, name, width)]`` in declaration order, escaped names
  as written (``\\a.b``);
- :func:`port_map`: ``{name: (direction, width)}``, escaped names without the backslash;
- :func:`header_port_names`: the names of the module header in header order, without the
  backslash;
- :func:`module_names`: ``[(offset, name)]`` of every module of a text, in text order, escaped
  names without the backslash.
"""

import re

from bincount.errors import BincountError

__all__ = ["verilog_ports", "port_map", "header_port_names", "module_names"]

_TYPE_WORDS = {"wire", "reg", "logic", "signed", "unsigned", "var", "tri"}
_DECL_RE = re.compile(r"^(input|output|inout)\b\s*(.*)$", re.S)
_RANGE_RE = re.compile(r"^\[\s*(-?\d+)\s*:\s*(-?\d+)\s*\]\s*(.*)$", re.S)
_MODULE_RE = re.compile(r"^module\s+\\?(\S+?)(?:\(|\s)", re.M)
_HEADER_RE = re.compile(r"\s*(?:#\s*\((?:[^()]|\([^()]*\))*\)\s*)?\(([^;]*?)\)\s*;", re.S)


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)      # attributes
    return re.sub(r"//[^\n]*", " ", text)


def _parse_decl(text, direction=None, width=1):
    """Parse ``[direction] [types] [range] name`` -> (direction, name, width)."""
    text = text.strip()
    m = _DECL_RE.match(text)
    if m:
        direction, text, width = m.group(1), m.group(2), 1
        words = text.split(None, 1)
        while words and words[0] in _TYPE_WORDS:
            text = words[1] if len(words) > 1 else ""
            words = text.split(None, 1)
        r = _RANGE_RE.match(text.strip())
        if r:
            width, text = abs(int(r.group(1)) - int(r.group(2))) + 1, r.group(3)
    m = re.match(r"\s*(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)", text)
    return direction, (m.group(1) if m else ""), width


def _module(verilog_text, top):
    """``(header list text or None, body text)`` of module ``top``."""
    text = _strip_comments(verilog_text)
    m = re.search(r"\bmodule\s+\\?" + re.escape(top) + r"(?=[\s(#;])", text)
    if m is None:
        raise BincountError(f"module {top!r} not found in the Verilog text")
    end = text.find("endmodule", m.end())
    module = text[m.end():end if end >= 0 else len(text)]
    header = _HEADER_RE.match(module)
    if header is None:
        return None, module
    return header.group(1), module[header.end():]


def verilog_ports(verilog_text, top):
    """``[(direction, name, width)]`` of module ``top``, in declaration order."""
    header, body = _module(verilog_text, top)
    ports = []
    if header is not None:
        direction, width = None, 1
        for item in header.split(","):
            direction, name, width = _parse_decl(item, direction, width)
            if direction is not None and name:
                ports.append((direction, name, width))
    for stmt in body.split(";"):
        stmt = stmt.strip()
        if not _DECL_RE.match(stmt):
            continue
        direction, first, width = _parse_decl(stmt)
        rest = stmt[stmt.index(first) + len(first):] if first else ""
        names = [first] + [_parse_decl(x)[1] for x in rest.split(",")[1:]]
        ports += [(direction, n, width) for n in names if n]
    if not ports:
        raise BincountError(f"module {top!r} has no port declarations that could be read")
    return ports


def port_map(verilog_text, top):
    """``{name: (direction, width)}`` of the ports of module ``top`` (names unescaped)."""
    return {name.lstrip("\\"): (direction, width)
            for direction, name, width in verilog_ports(verilog_text, top)}


def header_port_names(verilog_text, top):
    """Port names in the header of module ``top`` (``module top(a, b, ...);``), in header
    order, unescaped."""
    header, _ = _module(verilog_text, top)
    if header is None:
        raise BincountError(f"no module header for {top!r} in the Verilog text")
    return [_parse_decl(item)[1].lstrip("\\") for item in header.split(",") if item.strip()]


def module_names(verilog_text):
    """``[(offset of the module keyword, module name without a leading backslash)]`` of every
    module in ``verilog_text``, in text order."""
    return [(m.start(), m.group(1)) for m in _MODULE_RE.finditer(verilog_text)]
