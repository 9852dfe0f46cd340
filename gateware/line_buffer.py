"""Line buffer: ``rows`` row slots of a feature map, written in raster order, read at random.

Storage is one :class:`BankedRAM` of ``rows * width * subwords`` words of ``word_bits`` bits. Word
``(slot, x, sub)`` lives at address ``slot * width * subwords + x * subwords + sub``
(``subwords`` is a power of two, so ``x * subwords`` is a shift; ``slot * width * subwords``
comes from a table of ``rows`` constants: no multiplier). A binary block keeps map row ``y`` in
slot ``y mod rows``; the engine decides which slots may be overwritten.

Read: present ``r_slot``, ``r_x``, ``r_sub`` (and ``r_pad``); ``r_data`` holds the word
:attr:`LineBuffer.latency` cycles later (the memory reads every cycle; its data goes straight
into a register, so that no logic follows a block RAM's slow clock-to-output and the register
can become the RAM's own output register). With ``address_register`` the read address (the
slot base plus the pixel, and the padding multiplexer) is registered first, one cycle more,
and so are the write side's address, data and enable, by the RAM itself
(:class:`BankedRAM` ``port_registers``): one copy of those registers per column of block RAMs,
so that every RAM's address and enable pins are driven by flip-flops whose only loads are that
column's RAMs, which the placer can put next to them however far the RAMs are from the logic
that computes the address and from each other. A padded read (``r_pad`` high, only with ``fill`` given) reads one extra
word of the memory that holds ``fill`` and is never written: the padding of a convolution
window costs an address multiplexer, not a data multiplexer. Write: ``w_data`` goes to ``(w_slot, w_x,
w_sub)`` one clock edge after ``w_en`` is high (the word, its address and the enable are
registered first, so that neither the address adder nor the enable's fan-out reaches the RAM's
pins from the caller's logic). A read of the word written in the same cycle
must not happen (the engine never does it): synthesis is told so (see :class:`BankedRAM`).

Latency: 2 cycles from read address to ``r_data`` (3 with ``address_register``); a written
word can be read from the cycle after the one in which it is written, i.e. with the read
address presented 2 cycles after ``w_en`` (1 cycle with ``address_register``). Clock domain
``sync``.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from bincount.errors import BincountError

from ._common import check_int, delay
from .banked_ram import BankedRAM

__all__ = ["LineBuffer", "write_signature"]


def write_signature(width, rows, word_bits, subwords=1):
    """The write side of a :class:`LineBuffer` as a signature, seen from the writer: ``slot``,
    ``x``, ``sub``, ``data``, ``en`` (the buffer's ``w_*`` ports, same widths)."""
    sb, xb, bb = ceil_log2(max(rows, 2)), ceil_log2(max(width, 2)), ceil_log2(subwords)
    return wiring.Signature({"slot": Out(sb), "x": Out(xb), "sub": Out(max(bb, 1)),
                             "data": Out(word_bits), "en": Out(1)})


class LineBuffer(wiring.Component):
    """``rows`` row slots of ``width`` pixels of ``subwords`` words of ``word_bits`` bits.

    Parameters
    ----------
    width : int
        Pixels per row (``1..4096``).
    rows : int
        Row slots (``1..64``).
    word_bits : int
        Bits per word (``1..65536``).
    subwords : int
        Words per pixel, a power of two (``1..4096``).
    fill : int or None
        ``r_data`` of a padded read (``0 <= fill < 2**word_bits``); ``None``: no padding
        (``r_pad`` is ignored).
    address_register : bool
        Register the read address before the RAMs (module docstring; one cycle of latency).
    """

    def __init__(self, width, rows, word_bits, subwords=1, fill=None, address_register=False):
        self._width = check_int("width", width, (1, 4096))
        self._rows = check_int("rows", rows, (1, 64))
        self._word_bits = check_int("word_bits", word_bits, (1, 65536))
        self._subwords = check_int("subwords", subwords, (1, 4096))
        if subwords & (subwords - 1):
            raise BincountError(f"subwords must be a power of two, got {subwords}")
        if fill is not None and (isinstance(fill, bool) or not isinstance(fill, int)
                                 or not 0 <= fill < (1 << word_bits)):
            raise BincountError(f"fill must be an integer in 0..2**{word_bits}-1, "
                                f"got {fill!r}")
        self._fill = fill
        self._address_register = bool(address_register)
        init = [0] * self.depth + ([fill] if fill is not None else [])
        self._ram = BankedRAM(word_bits, len(init), init, port_registers=self._address_register)
        sb, xb, bb = ceil_log2(max(rows, 2)), ceil_log2(max(width, 2)), ceil_log2(subwords)
        super().__init__({
            "w_slot": In(sb), "w_x": In(xb), "w_sub": In(max(bb, 1)), "w_data": In(word_bits),
            "w_en": In(1),
            "r_slot": In(sb), "r_x": In(xb), "r_sub": In(max(bb, 1)), "r_pad": In(1),
            "r_data": Out(word_bits),
        })

    @property
    def depth(self):
        """Words of the map: ``rows * width * subwords`` (plus one fill word when padded)."""
        return self._rows * self._width * self._subwords

    @property
    def latency(self):
        """Cycles from the read address to ``r_data``: the RAM's (2, or 3 with
        ``address_register``, whose RAM registers its ports)."""
        return self._ram.latency

    @property
    def write_signature(self):
        """:func:`write_signature` of this buffer (connect it to :meth:`write_from`)."""
        return write_signature(self._width, self._rows, self._word_bits, self._subwords)

    def write_from(self, m, port):
        """Drive the write ports from ``port``, an interface of :attr:`write_signature`
        flipped (the side that receives the writes)."""
        m.d.comb += [self.w_slot.eq(port.slot), self.w_x.eq(port.x), self.w_sub.eq(port.sub),
                     self.w_data.eq(port.data), self.w_en.eq(port.en)]

    def _address(self, m, slot, x, sub, name):
        bb = ceil_log2(self._subwords)
        ab = ceil_log2(max(self.depth, 2))
        bases = Array(Const(s * self._width * self._subwords, ab) for s in range(self._rows))
        addr = Signal(ab, name=name)
        pix = x if bb == 0 else (x << bb) | sub[:bb]
        m.d.comb += addr.eq(bases[slot] + pix)
        return addr

    def elaborate(self, platform):
        m = Module()
        padded = self._fill is not None
        # with address_register, the RAM registers its ports itself, once per column of
        # block RAMs; else the write side is registered here
        m.submodules.ram = ram = self._ram
        r_addr = self._address(m, self.r_slot, self.r_x, self.r_sub, "r_addr")
        w_addr = self._address(m, self.w_slot, self.w_x, self.w_sub, "w_addr")
        w_data, w_en = self.w_data, self.w_en
        if not self._address_register:
            w_en = Signal(name="w_en_r")
            m.d.sync += w_en.eq(self.w_en)
            w_addr, w_data = delay(m, w_addr, 1, "w_addr"), delay(m, w_data, 1, "w_data")
        m.d.comb += [
            ram.w_addr.eq(w_addr),
            ram.w_data.eq(w_data),
            ram.w_en.eq(w_en),
            self.r_data.eq(ram.r_data),
            ram.r_addr.eq(Mux(self.r_pad, self.depth, r_addr) if padded else r_addr),
        ]
        return m
