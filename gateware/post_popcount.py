"""Post-popcount interface: what every block that turns a lane's XNOR-popcount into its output
value offers, so that the engines use either form through the same ports.

A post-popcount block computes ``y = f(count; constants)`` for one output channel, pipelined:

- ``count`` (``In``, unsigned, ``0..n``), ``in_valid`` (``In(1)``);
- one input per field of :attr:`~PostPopcount.constants_layout` (same name and shape): the
  channel's constants, sampled with ``count``;
- ``y`` (``Out(signed(out_bits))``) and ``out_valid`` (``Out(1)``), :attr:`latency` cycles
  after the inputs.

The constants layout (an ``amaranth.lib.data.StructLayout``, first field at bit 0) is also the
layout of one lane's field of a per-group constant word in memory
(:meth:`bincount.gateware.block_params.BlockParams.conv_words`): the packer and the hardware
describe the word once. Implementations: :class:`~bincount.gateware.threshold_compare.
ThresholdCompare` (binarized counting) and :class:`~bincount.gateware.baseline_scale.
BaselineScale` (multiply baseline).
"""

from amaranth.lib import wiring

__all__ = ["PostPopcount"]


class PostPopcount(wiring.Component):
    """Base class of the post-popcount blocks (module docstring); not elaborated itself."""

    @classmethod
    def constants_layout_for(cls, **params):
        """The constants layout of a block built with ``params`` (no block is built)."""
        raise NotImplementedError

    @property
    def constants_layout(self):
        """``StructLayout`` of the per-channel constants; its fields are input ports."""
        raise NotImplementedError

    @property
    def latency(self):
        """Cycles from ``count`` / constants to ``y`` / ``out_valid``."""
        raise NotImplementedError

    def constants_from(self, word):
        """Statements that drive the constant inputs from ``word``, a view of
        :attr:`constants_layout` (e.g. one lane of a constant ROM's word)."""
        return [getattr(self, name).eq(word[name]) for name, _ in self.constants_layout]

    def elaborate(self, platform):
        raise NotImplementedError
