"""RSign compare: the binary activations of a ReActNet block (learned sign threshold).

Computes, for each of ``channels`` channels c (``docs/conventions.md``, "One binary block")::

    bits[c] = 1 if x[c] + bias[c] >= 0 else 0

``x`` (the residual stream) and ``bias`` (the per-channel RSign bias) are signed
two's-complement integers of ``res_bits`` bits; the sum is computed ``res_bits + 1`` bits wide,
so it is exact and never wraps. One adder and a sign test per channel, no multiplier.

Bit order: channel c of ``x`` and ``bias`` occupies bits ``[c*res_bits, (c+1)*res_bits)`` of
the packed port (LSB first); bit c of ``bits`` is channel c (1 = activation +1).

Latency: 1 cycle (``bits`` registered). Throughput: one input per cycle, no backpressure;
``out_valid`` is ``in_valid`` delayed by the latency. Clock domain ``sync`` (ports ``clk`` and
``rst`` in Verilog; ``rst`` is synchronous, active high, and clears ``out_valid`` only).
"""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int

__all__ = ["RSignCompare", "CHANNELS_RANGE", "RES_BITS_RANGE"]

#: Valid ranges (inclusive) of the parameters.
CHANNELS_RANGE = (1, 1024)
RES_BITS_RANGE = (2, 32)


class RSignCompare(wiring.Component):
    """``bits[c] = (x[c] + bias[c] >= 0)`` for a group of channels, registered.

    Parameters
    ----------
    channels : int
        Number of channels handled in parallel (``1..1024``).
    res_bits : int
        Width of each channel of ``x`` and ``bias`` (signed, ``2..32``, default 16).

    Members
    -------
    x : ``In(channels * res_bits)``
        Residual-stream values, channel c in bits ``[c*res_bits, (c+1)*res_bits)``, signed.
    bias : ``In(channels * res_bits)``
        Per-channel RSign biases, packed like ``x``.
    in_valid : ``In(1)``
        The inputs are valid in this cycle.
    bits : ``Out(channels)``
        Bit c is ``x[c] + bias[c] >= 0``, ``latency`` cycles after the inputs.
    out_valid : ``Out(1)``
        ``bits`` is valid (``in_valid`` delayed by ``latency``).

    Raises
    ------
    BincountError
        A parameter is not an integer or out of its range (the message names both).
    """

    def __init__(self, channels, res_bits=16):
        self._channels = check_int("channels", channels, CHANNELS_RANGE)
        self._res_bits = check_int("res_bits", res_bits, RES_BITS_RANGE)
        width = channels * res_bits
        super().__init__({
            "x": In(width),
            "bias": In(width),
            "in_valid": In(1),
            "bits": Out(channels),
            "out_valid": Out(1),
        })
        self.port_doc = {
            "x": f"{channels} residual-stream value(s), signed two's complement, {res_bits} bits "
                 f"each; channel c in bits [c*{res_bits}, (c+1)*{res_bits})",
            "bias": f"{channels} per-channel RSign bias(es), signed two's complement, "
                    f"{res_bits} bits each, packed like x",
            "in_valid": "x/bias are valid this cycle (one input per cycle, no backpressure)",
            "bits": f"bit c = (x[c] + bias[c] >= 0) (exact {res_bits + 1}-bit sum), "
                    f"{self.latency} cycle(s) after the inputs",
            "out_valid": f"bits is valid: in_valid delayed by {self.latency} cycle(s)",
        }

    @property
    def channels(self):
        return self._channels

    @property
    def res_bits(self):
        return self._res_bits

    @property
    def latency(self):
        """Cycles from the inputs to ``bits`` / ``out_valid``: 1."""
        return 1

    @classmethod
    def constants_layout_for(cls, res_bits=16):
        """One channel's field of a packed ``bias`` word: ``bias`` (signed ``res_bits``)."""
        return data.StructLayout({"bias": signed(res_bits)})

    def elaborate(self, platform):
        m = Module()
        rb = self._res_bits
        ge = []
        for c in range(self._channels):
            x = self.x[c * rb:(c + 1) * rb].as_signed()
            b = self.bias[c * rb:(c + 1) * rb].as_signed()
            total = Signal(signed(rb + 1), name=f"sum{c}")
            m.d.comb += total.eq(x + b)
            ge.append(~total[-1])                   # sign bit clear: sum >= 0
        bits = Signal.like(self.bits, name="bits_reg", reset_less=True)
        valid = Signal(name="valid_reg")
        m.d.sync += [
            bits.eq(Cat(*ge)),
            valid.eq(self.in_valid),
        ]
        m.d.comb += [
            self.bits.eq(bits),
            self.out_valid.eq(valid),
        ]
        return m
