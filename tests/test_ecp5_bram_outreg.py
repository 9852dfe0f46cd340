"""Moving the flip-flops after an ECP5 block RAM into its output register (Fmax netlists)."""

import json

from bincount.hw.ecp5_bram_outreg import absorb_output_registers


def _netlist(ff_params=None, ff_extra=None, extra_sink=False):
    ram = {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG",
                                            "CLKBMUX": "CLKB"},
           "port_directions": {"CLKB": "input", "DOB0": "output", "DOB1": "output",
                               "OCEB": "input", "RSTB": "input"},
           "connections": {"CLKB": [2], "DOB0": [10], "DOB1": [11], "OCEB": ["0"],
                           "RSTB": ["0"]}}
    cells = {"ram": ram}
    for k, (d, q) in enumerate(((10, 20), (11, 21))):
        conn = {"CLK": [2], "DI": [d], "Q": [q], "LSR": ["0"]}
        conn.update(ff_extra or {})
        cells[f"ff{k}"] = {"type": "TRELLIS_FF",
                           "parameters": dict({"CEMUX": "1 ", "CLKMUX": "CLK"},
                                              **(ff_params or {})),
                           "port_directions": {"CLK": "input", "DI": "input", "Q": "output",
                                               "LSR": "input", "CE": "input"},
                           "connections": conn}
    if extra_sink:
        cells["lut"] = {"type": "LUT4", "parameters": {},
                        "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [11], "Z": [30]}}
    return json.dumps({"modules": {"top": {"ports": {}, "cells": cells}}})


def test_registers_after_the_ram_move_into_it():
    text, n = absorb_output_registers(_netlist(), "top")
    assert n == 2
    cells = json.loads(text)["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG" and ram["parameters"]["REGMODE_A"] == "NOREG"
    assert ram["connections"]["DOB0"] == [20] and ram["connections"]["DOB1"] == [21]
    assert ram["connections"]["OCEB"] == ["1"]


def test_registers_with_a_clock_enable_move_with_it():
    """Flip-flops that load on an enable (a stalling ROM pipeline): the output register's clock
    enable becomes that net."""
    text, n = absorb_output_registers(_netlist({"CEMUX": "CE"}, {"CE": [5]}), "top")
    ram = json.loads(text)["modules"]["top"]["cells"]["ram"]
    assert n == 2 and ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEB"] == [5]


def test_anything_else_is_left_alone():
    netlist = json.loads(_netlist({"CEMUX": "CE"}, {"CE": [5]}))
    netlist["modules"]["top"]["cells"]["ff1"]["connections"]["CE"] = [7]
    for kwargs in ({"ff_params": {"CEMUX": "INV"}, "ff_extra": {"CE": [5]}},  # inverted enable
                   {"ff_extra": {"LSR": [6]}},                               # a reset
                   {"ff_extra": {"CLK": [3]}},                               # another clock
                   {"extra_sink": True}):                                    # RAM output shared
        before = _netlist(**kwargs)
        text, n = absorb_output_registers(before, "top")
        assert n == 0 and json.loads(text) == json.loads(before), kwargs
    # two enables on one port
    text, n = absorb_output_registers(json.dumps(netlist), "top")
    assert n == 0 and json.loads(text) == netlist


def _pdp_netlist(share_a=False):
    """A 36-bit pseudo-dual-port RAM (read port B, write port A unclocked as in a ROM) with one
    output of each half registered."""
    ram = {"type": "DP16KD",
           "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKBMUX": "CLKB",
                          "DATA_WIDTH_A": "00000000000000000000000000100100",
                          "DATA_WIDTH_B": "00000000000000000000000000100100"},
           "port_directions": {"CLKA": "input", "CLKB": "input", "DOA0": "output",
                               "DOB0": "output"},
           "connections": {"CLKA": ["0"], "CLKB": [2], "DOA0": [10], "DOB0": [11]}}
    cells = {"ram": ram}
    for k, (d, q) in enumerate(((10, 20), (11, 21))):
        cells[f"ff{k}"] = {"type": "TRELLIS_FF", "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK"},
                           "port_directions": {"CLK": "input", "DI": "input", "Q": "output"},
                           "connections": {"CLK": [2], "DI": [d], "Q": [q]}}
    if share_a:
        cells["lut"] = {"type": "LUT4", "parameters": {},
                        "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [10], "Z": [30]}}
    return json.dumps({"modules": {"top": {"ports": {}, "cells": cells}}})


def test_36_bit_mode_switches_both_halves_on_the_read_clock():
    text, n = absorb_output_registers(_pdp_netlist(), "top")
    ram = json.loads(text)["modules"]["top"]["cells"]["ram"]
    assert n == 2
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["DOA0"] == [20] and ram["connections"]["DOB0"] == [21]
    # one half not absorbable: neither half changes
    before = _pdp_netlist(share_a=True)
    text, n = absorb_output_registers(before, "top")
    assert n == 0 and json.loads(text) == json.loads(before)
