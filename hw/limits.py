"""What the tools can build: the largest lane width N that ``generate`` and ``report`` accept.

Measured, not assumed (niced conversions of ``xnor_popcount`` and of the widest-input block,
``output_lane --form baseline`` with the widest multiplier and offset):

* Amaranth's netlist numbers the bits of the top-level input ports of a design as the outputs
  of one cell, at most 2**16 bits (``assert bit in range(1 << 16)`` in ``amaranth.hdl._nir``):
  a lane takes ``2 * N`` activation and weight bits plus its constants, so N = 32768 cannot be
  converted at all (it fails after about a minute of elaboration);
* N = 16384 converts in about a minute (the Verilog is 3.5 MB);
* N = MAX_N converts for every block and parameter (see docs/benchmarks.md for the times).

Torch-free and Amaranth-free, so that the command line checks it before any import or work.
"""

__all__ = ["MAX_N", "N_HELP"]

#: Largest XNOR width N a block is generated or synthesised at (the ReActNet-18 stages use
#: 576..4608).
MAX_N = 32512
N_HELP = f"1..{MAX_N}"
