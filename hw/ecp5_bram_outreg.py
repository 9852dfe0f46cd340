"""Absorb flip-flops that directly follow an ECP5 block RAM output into the RAM's output register.

Yosys maps inferred memories onto ``DP16KD`` with ``REGMODE_A/B = "NOREG"``: the RAM's data
appears 5.8 ns after the clock (speed grade 6), so a block RAM read followed by a register
bounds Fmax near 125 MHz whatever the logic. The DP16KD has an output register of its own
(``REGMODE = "OUTREG"``, clock-to-output about 1 ns) that the vendor tools fill with such a
register. :func:`absorb_output_registers` does the same on Yosys's JSON netlist before nextpnr:
for every ``DP16KD`` port (A or B) whose every used data output ``DO{A,B}k`` drives exactly one
``TRELLIS_FF`` data input, and nothing else, where that flip-flop

- is clocked by the port's clock net with the same (non-inverted) polarity,
- has its clock enable tied on (``CEMUX = "1"``) or driven by a net (``CEMUX = "CE"``), the
  same for every flip-flop of the port, and its set/reset unused (``LSR`` constant 0),

(in the 36-bit pseudo-dual-port mode, ``DATA_WIDTH_B = 36``, the read port B owns all 36 outputs
``DOA0-17`` and ``DOB0-17`` and their clock is ``CLKB``: the two ports' outputs are then treated
as one, and both ``REGMODE_A`` and ``REGMODE_B`` become ``"OUTREG"``, or neither),

the flip-flops are removed, their outputs are driven by the RAM pins instead and the port's
``REGMODE`` becomes ``"OUTREG"`` (output clock enable ``OCE`` tied to 1, or to the flip-flops'
clock enable net; output reset unused).
The circuit computes the same values in the same cycles: one register is exchanged for another.
Anything else is left as Yosys produced it. The generated Verilog is not changed; only the
netlist placed and routed for the Fmax figure.
"""

import json

__all__ = ["absorb_output_registers"]

def absorb_output_registers(netlist_text, top):
    """``(new netlist text, number of flip-flops absorbed)`` for module ``top``."""
    data = json.loads(netlist_text)
    mod = data["modules"][top]
    cells = mod["cells"]
    port_bits = set()
    for p in mod.get("ports", {}).values():
        port_bits.update(b for b in p["bits"] if isinstance(b, int))
    sinks = {}
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for pin, bits in c["connections"].items():
            if dirs.get(pin) == "input":
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, pin))
    absorbed = 0
    for name, c in list(cells.items()):
        if c["type"] != "DP16KD":
            continue
        for group, outputs in _read_groups(c):
            found = _plan(c, group, outputs, cells, sinks, port_bits)
            if not found:
                continue
            plan, ce = found
            conn = c["connections"]
            for pin, ff_name, q in plan:
                conn[pin] = [q]
                del cells[ff_name]
                absorbed += 1
            for port in outputs:
                c["parameters"][f"REGMODE_{port}"] = "OUTREG"
                conn[f"OCE{port}"] = [ce]
                if f"RST{port}" in conn:
                    conn[f"RST{port}"] = ["0"]
    return json.dumps(data), absorbed


def _width(c, port):
    v = str(c["parameters"].get(f"DATA_WIDTH_{port}", "18")).strip()
    try:
        return int(v, 2) if set(v) <= {"0", "1"} and len(v) > 2 else int(v)
    except ValueError:
        return 18


def _read_groups(c):
    """``[(clock port, output ports)]``: in the 36-bit pseudo-dual-port mode (read width 36)
    all 36 outputs ``DOA0-17, DOB0-17`` belong to the read port B and its clock ``CLKB``, so
    both output registers are switched together; otherwise each port has its own."""
    if _width(c, "B") == 36:
        return [("B", ("A", "B"))]
    return [("A", ("A",)), ("B", ("B",))]


def _plan(c, clock_port, outputs, cells, sinks, port_bits):
    """``([(pin, flip-flop, its Q net)], clock enable)`` when every used output of ``outputs``
    feeds exactly one plain flip-flop on the read clock, all with the same clock enable (``"1"``
    or a net), else ``None``."""
    params, conn = c["parameters"], c["connections"]
    if any(params.get(f"REGMODE_{p}") != "NOREG" for p in outputs):
        return None
    clk = conn.get(f"CLK{clock_port}")
    if not clk or not isinstance(clk[0], int) \
            or params.get(f"CLK{clock_port}MUX", f"CLK{clock_port}") != f"CLK{clock_port}":
        return None
    plan, ces = [], set()
    for port in outputs:
        for k in range(18):
            pin = f"DO{port}{k}"
            bits = conn.get(pin)
            if not bits or not isinstance(bits[0], int):
                continue
            b = bits[0]
            users = sinks.get(b, [])
            if not users:
                continue
            if b in port_bits or len(users) != 1:
                return None
            ff_name, ff_pin = users[0]
            ff = cells.get(ff_name)
            if ff is None or ff["type"] != "TRELLIS_FF" or ff_pin != "DI":
                return None
            fp, fc = ff["parameters"], ff["connections"]
            lsr = fc.get("LSR", ["0"])[0]
            cemux = fp.get("CEMUX", "").strip()
            if cemux == "1":
                ces.add("1")
            elif cemux == "CE" and isinstance(fc.get("CE", [None])[0], int):
                ces.add(fc["CE"][0])
            else:
                return None
            if fc.get("CLK") != clk or fp.get("CLKMUX", "CLK").strip() != "CLK" \
                    or len(ces) != 1 or isinstance(lsr, int) \
                    or any(isinstance(v[0], int) for k, v in fc.items()
                           if k not in ("CLK", "DI", "Q", "LSR", "CE")):
                return None
            plan.append((pin, ff_name, fc["Q"][0]))
    return (plan, ces.pop()) if plan else None
