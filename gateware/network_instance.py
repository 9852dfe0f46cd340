"""Network instance: the ports of an emitted whole-network module as an Amaranth component whose
body is an ``Instance`` of that module by name.

A wrapper (:class:`~bincount.gateware.axis_network.AxisNetwork`) built around this component
is converted to Verilog on its own, in seconds; the network's Verilog (minutes at full width)
comes from the build layer's store (:func:`bincount.hw.designs.network_design`) and both files
are read together. The ports are those of ``hw/network_emit.py``'s module: ``clk``, ``rst``,
``i__{valid,ready,payload}``, ``o__{valid,ready,payload}`` and, for streamed stages,
``w{stage}_{j}__{valid,ready,payload}``.

Latency: that of the instantiated network (none added).
"""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["NetworkInstance"]


class NetworkInstance(wiring.Component):
    """Module ``module`` with an 8-bit input stream ``i``, a result stream ``o`` of
    ``result_layout`` and weight streams ``weight_ports`` (``[(name, bits)]``)."""

    def __init__(self, module, result_layout, weight_ports=()):
        self.module = str(module)
        self.weight_ports = [(str(n), int(w)) for n, w in weight_ports]
        members = {"i": In(stream.Signature(8)), "o": Out(stream.Signature(result_layout))}
        for name, width in self.weight_ports:
            members[name] = In(stream.Signature(width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal(),
                 "i_i__valid": self.i.valid, "i_i__payload": self.i.payload,
                 "o_i__ready": self.i.ready,
                 "o_o__valid": self.o.valid, "o_o__payload": Value.cast(self.o.payload),
                 "i_o__ready": self.o.ready}
        for name, _ in self.weight_ports:
            s = getattr(self, name)
            ports.update({f"i_{name}__valid": s.valid, f"i_{name}__payload": s.payload,
                          f"o_{name}__ready": s.ready})
        m.submodules.network = Instance(self.module, **ports)
        return m
