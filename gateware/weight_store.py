"""Weight store: loadable memories (no initial contents, UltraRAM on Zynq UltraScale+) that
replay the weight words of streamed blocks to their ``w`` inputs.

A stage built with ``weights="stream"`` takes one word per fold on each block's ``w`` stream, in
the order of :meth:`~bincount.gateware.block_params.BlockParams.weight_words` (``G*F`` words of
``P*B`` bits), and that sequence repeats for every output pixel. This store holds those words
and plays them in a loop. Its memories have no initial contents (an UltraRAM cannot be
initialised by the bitstream), so they are written once after reset through ``load``.

Load image (``load``, ``load_bits``-bit words, :func:`load_image` builds it): block 0's words
first, word 0 first; each memory word of ``width`` bits is sent as
``C = ceil(width / load_bits)`` load words, least significant chunk first (load word ``c``
holds bits ``[c*load_bits, (c+1)*load_bits)``; bits past ``width`` in the last chunk are
ignored). After the last word ``loaded`` goes high and stays high until reset; ``load.ready``
is then low.

Replay (``w{j}``): a read counter per block walks ``0 .. depth_j - 1`` and wraps. The memory's
read port is synchronous and its enable is ``advance = ~valid | w.ready``, so the word on
``w{j}.payload`` is held while the engine does not take it::

    advance: valid <- loaded, addr <- addr + 1 (mod depth) when loaded
    w.payload = read data (word at the last address read), w.valid = valid

Latency: 1 cycle from a read to its word on ``w{j}`` (:attr:`WeightStore.latency`); one word
per cycle per block while ``w{j}.ready`` stays high. Clock domain ``sync``; ``rst`` clears
``loaded`` and the counters (the memory contents are kept but must be loaded again).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._common import check_int

__all__ = ["WeightStore", "load_image", "chunks_per_word"]


def chunks_per_word(width, load_bits=32):
    """Load words per memory word: ``ceil(width / load_bits)``."""
    return -(-int(width) // int(load_bits))


def load_image(blocks, width, load_bits=32):
    """The ``load`` words (ints) of ``blocks`` (one list of ``width``-bit words per block), in
    the order of the module docstring."""
    c, mask = chunks_per_word(width, load_bits), (1 << load_bits) - 1
    out = []
    for words in blocks:
        for word in words:
            out += [(int(word) >> (k * load_bits)) & mask for k in range(c)]
    return out


class WeightStore(wiring.Component):
    """Loadable weight memories of ``len(depths)`` streamed blocks (module docstring).

    Parameters
    ----------
    depths : list of int
        Words per block (``G*F`` of each block).
    width : int
        Bits per word (``P*B``).
    load_bits : int
        Bits per ``load`` word.
    """

    def __init__(self, depths, width, load_bits=32):
        self.depths = [check_int("weight store depth", d, (1, 1 << 24)) for d in depths]
        if not self.depths:
            raise ValueError("a weight store needs at least one block")
        self.width = check_int("weight store width", width, (1, 1 << 16))
        self.load_bits = check_int("load word bits", load_bits, (1, 1024))
        members = {"load": In(stream.Signature(self.load_bits)), "loaded": Out(1)}
        for j in range(len(self.depths)):
            members[f"w{j}"] = Out(stream.Signature(self.width))
        super().__init__(members)

    @property
    def latency(self):
        """Cycles from a memory read to its word on ``w{j}``: 1."""
        return 1

    @property
    def load_words(self):
        """Length of the load image in ``load`` words."""
        return chunks_per_word(self.width, self.load_bits) * sum(self.depths)

    @property
    def memory_bits(self):
        return self.width * sum(self.depths)

    def elaborate(self, platform):
        m = Module()
        c = chunks_per_word(self.width, self.load_bits)
        lb = self.load_bits
        loaded = Signal(name="loaded_r")
        block = Signal(range(max(2, len(self.depths))), name="load_block")
        addr = Signal(range(max(2, max(self.depths))), name="load_addr")
        chunk = Signal(range(max(2, c)), name="load_chunk")
        gather = Signal(max(1, (c - 1) * lb), name="gather", reset_less=True)
        take = self.load.valid & ~loaded
        last_chunk = chunk == c - 1
        word = Signal(c * lb, name="load_word")
        m.d.comb += [self.load.ready.eq(~loaded), self.loaded.eq(loaded),
                     word.eq(Cat(gather, self.load.payload) if c > 1 else self.load.payload)]
        with m.If(take):
            if c > 1:
                m.d.sync += gather.eq(Cat(gather[lb:], self.load.payload))
            with m.If(last_chunk):
                m.d.sync += chunk.eq(0)
                for j, d in enumerate(self.depths):
                    with m.If(block == j):
                        with m.If(addr == d - 1):
                            m.d.sync += addr.eq(0)
                            if j == len(self.depths) - 1:
                                m.d.sync += loaded.eq(1)
                            else:
                                m.d.sync += block.eq(j + 1)
                        with m.Else():
                            m.d.sync += addr.eq(addr + 1)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)

        for j, d in enumerate(self.depths):
            mem = Memory(shape=self.width, depth=d, init=[])
            m.submodules[f"mem{j}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync")
            w = getattr(self, f"w{j}")
            valid = Signal(name=f"w{j}_valid_r")
            raddr = Signal(range(max(2, d)), name=f"w{j}_addr")
            advance = ~valid | w.ready
            m.d.comb += [wp.en.eq(take & last_chunk & (block == j)),
                         wp.addr.eq(addr), wp.data.eq(word[:self.width]),
                         rp.en.eq(advance), rp.addr.eq(raddr),
                         w.valid.eq(valid), w.payload.eq(rp.data)]
            with m.If(advance):
                m.d.sync += valid.eq(loaded)
                with m.If(loaded):
                    m.d.sync += raddr.eq(Mux(raddr == d - 1, 0, raddr + 1))
        return m
