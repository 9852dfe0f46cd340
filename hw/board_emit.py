"""Verilog of the board core (:class:`bincount.gateware.board_core.BoardCore`: the network
behind the UART protocol) with a JSON manifest beside it.

The module is named ``bincount_board_{digest}``, ``digest`` being the first 10 hex digits of
the SHA-256 of the export digest, the knobs and the divisor, so the same inputs give the same
name and bytes. The manifest adds to the ports (``clk``, ``rst``, ``uart_rx``, ``uart_tx``,
``leds``): ``divisor``, ``cycles_per_image`` and ``info`` (the INFO reply's payload, hex).
"""

import hashlib
import json

from bincount import __version__
from bincount.gateware.board_core import BoardCore
from bincount.hw.emit import manifest, verilog_text
from bincount.hw.network_emit import export_digest

__all__ = ["emit_board"]

PORT_DOC = {
    "uart_rx": "UART from the host: 8N1, LSB first, `divisor` clock cycles per bit; idles high",
    "uart_tx": "UART to the host: 8N1, LSB first, `divisor` clock cycles per bit; idles high",
    "leds": "[3:0] class of the last result (binary), [4] toggles per result, [5] last reply "
            "was an error, [6] a frame is being received, [7] an image is in the network",
}


def emit_board(export, lanes=None, bits_per_cycle=None, stem_lanes=None, divisor=None):
    """Verilog text and manifest of the board core (nothing written); knobs as
    :class:`BoardCore` (``divisor`` None: its default)."""
    kwargs = {} if divisor is None else {"divisor": divisor}
    core = BoardCore(export, lanes, bits_per_cycle, stem_lanes, **kwargs)
    core.port_doc = PORT_DOC
    net = core.network
    params = {"lanes": net.lanes, "bits_per_cycle": net.bits_per_cycle,
              "stem_lanes": net.stem_lanes, "divisor": core.divisor,
              "export_digest": export_digest(export)}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    name = f"bincount_board_{key[:10]}"
    header = [f"bincount {__version__}: board core (UART protocol + network), parameters "
              f"{json.dumps(params, sort_keys=True)}",
              f"ports and protocol numbers: {name}.json"]
    text = verilog_text(core, name, header=header)
    info = manifest(core, name, "board_core", params, text=text)
    info.update({"divisor": core.divisor, "cycles_per_image": core.cycles_per_image,
                 "info": core.info.hex()})
    return text, info
