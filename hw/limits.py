"""What the tools can build: the largest lane width N that ``generate`` and ``report`` accept.

Measured, not assumed (niced conversions of ``xnor_popcount`` and of the widest-input block,
``output_lane --form baseline`` with the widest multiplier and offset):

* Amaranth's netlist numbers the bits of the top-level input ports of a design as the outputs
  of one cell, at most 2**16 bits (``assert bit in range(1 << 16)`` in ``amaranth.hdl._nir``):
  a lane takes ``2 * N`` activation and weight bits plus its constants, so N = 32768 cannot be
  converted at all (it fails after about a minute of elaboration);
* N = 16384 (``xnor_popcount``) converts: about a minute, 3.5 MB of Verilog, 0.35 GB of memory;
* N = MAX_N = 32512 converts for the widest-input case, ``output_lane --form baseline
  --mul-bits 48 --off-bits 96`` (2 * 32512 + 144 + 3 input bits): 7.1 MB of Verilog, 0.7 GB of
  memory, about 5 minutes on a busy 2-core machine. Yosys' own WebAssembly address space is not
  the limit below that.

Synthesis (``report``) of a lane that wide takes far longer than its conversion; the ReActNet-18
stages need N = 576..4608.

Torch-free and Amaranth-free, so that the command line checks it before any import or work.
"""

__all__ = ["MAX_N", "N_HELP"]

#: Largest XNOR width N a block is generated or synthesised at (the ReActNet-18 stages use
#: 576..4608).
MAX_N = 32512
N_HELP = f"1..{MAX_N}"
