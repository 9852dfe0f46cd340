"""The boards ``bincount build --board`` knows: board name -> the module that builds it.

Each module has one function ``build_board(args, out_dir)`` (``args``: the parsed options of
``bincount build``; ``out_dir``: the output folder, already checked) that checks the options
that concern its board before any work, builds, prints what it wrote and returns the exit
status. Modules are imported only when their board is asked for.
"""

import importlib
import importlib.util

from bincount.errors import BincountError

__all__ = ["BOARDS", "board_module", "default_out_dir"]

#: board name -> (module, one line on what is built)
BOARDS = {
    "ulx3s-85f": ("bincount.hw.board_ulx3s",
                  "Radiona ULX3S with an LFE5U-85F: bitstream (.bit, .svf) with the PyPI tools"),
    "kv260": ("bincount.hw.board_kv260",
              "AMD Kria KV260 (Zynq UltraScale+): Verilog, XDC and a Vivado project script"),
    "zcu104": ("bincount.hw.board_kv260",
               "AMD ZCU104 (Zynq UltraScale+): Verilog, XDC and a Vivado project script"),
}


def default_out_dir(board):
    """``build/board/<board>``."""
    return f"build/board/{board}"


def board_module(board):
    """The module that builds ``board``; :class:`BincountError` with one line for an unknown
    board or a board whose module is not installed."""
    if board not in BOARDS:
        raise BincountError(f"--board {board!r} is not a known board; boards: "
                            f"{', '.join(BOARDS)}")
    name = BOARDS[board][0]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise BincountError(f"--board {board}: its build module {name} is not part of this "
                            f"installation; boards that build here: "
                            f"{', '.join(b for b in BOARDS if _present(BOARDS[b][0]))}") \
            from None


def _present(module):
    return importlib.util.find_spec(module) is not None
