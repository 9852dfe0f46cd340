"""Block sequencer: the loop of a binary-block engine over output pixels, channel groups and
folds, one fold per cycle, with the row and output credits that gate it.

Loop (outermost first): output row ``oy``, column ``ox``, channel group ``g``, fold ``f`` with
``f = tap*CB + cb``, ``tap = ky*3 + kx``, ``CB = Cin/B``. A fold issues (``issue``) in the
cycle its coordinates are on ``fold`` (:func:`fold_layout`); the weight address ``w_addr``
counts the group's weight words (``g*F + f``). With split weights a group has the ``F = 8*CB``
folds of taps 0..7 only: tap 8 is counted beside them, its slice ``f mod 8`` of channel block
``f // 8`` in fold ``f`` (:mod:`~bincount.gateware.block_params`; the window buffer reads it
from ``fold``). With streamed weights a fold issues only while ``claimable`` is high.

A group starts when

- its input rows are loaded: ``loaded >= need`` with ``need = min(H, oy*s + 2)``, registered,
  and held off for 3 cycles after every output row while ``need`` and ``loaded`` settle;
- the output FIFO has room for every group in flight: ``space = credits - groups issued + beats
  taken`` (``out_taken``, registered: a credit returns one cycle after its beat leaves, so that
  the consumer's ready, which decides ``out_taken``, ends in a flip-flop here and not in the
  credit counter's adder) is not zero.

``low_k = max(0, oy*s - 1) + K`` (``K`` row slots) tells the input side below which row it may
fill; ``image_done`` pulses one cycle after an image's last fold. Both are registers, so no
adder sits in the control paths.

Latency: :attr:`BlockSequencer.latency` = 1 cycle from ``loaded`` reaching a group's condition
to the group's first ``issue`` (``rows_ok`` and ``space`` are registers; 2 from ``out_taken``).
Clock domain ``sync``; ``rst`` returns to the start of an image with all credits free.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._common import check_int, delay_valid
from .block_params import BlockParams

__all__ = ["BlockSequencer", "fold_layout", "row_span", "ROW_HOLD"]

#: Cycles a group start is held off after each output row (``need`` / ``loaded`` settle).
ROW_HOLD = 3


def row_span(params):
    """Range of the row counters of ``params`` (input rows relative to the current image)."""
    return params.size + 3 + params.stride + 2


def fold_layout(params):
    """The coordinates of a fold (``StructLayout``): ``oy``, ``ox``, ``group``, ``fold``,
    ``ky``, ``kx``, ``cb``, ``top_slot`` (line-buffer slot of the window's top row),
    ``w_addr`` (weight word)."""
    p = params
    ho, cb = p.out_size, p.cin // p.bits_per_cycle
    return data.StructLayout({
        "oy": range(max(ho, 2)), "ox": range(max(ho, 2)),
        "group": range(max(p.out_groups, 2)), "fold": range(max(p.folds, 2)),
        "ky": range(3), "kx": range(3), "cb": range(max(cb, 2)),
        "top_slot": range(3 + p.stride), "w_addr": range(max(p.out_groups * p.folds, 2)),
    })


class BlockSequencer(wiring.Component):
    """The fold loop of the block ``params`` with ``credits`` output FIFO entries.

    Members
    -------
    loaded : ``In(range(row_span))``
        Input rows of the current image complete in the line buffers.
    out_taken : ``In(1)``
        A beat left the output FIFO (a credit returns).
    claimable : ``In(1)``, streamed weights only
        A weight word can be claimed: a fold may issue.
    issue, first, last : ``Out(1)``
        A fold issues; it is its group's first / last fold.
    fold : ``Out(fold_layout(params))``
        The coordinates of the fold (valid with ``issue``).
    low_k : ``Out(range(row_span + K))``; image_done : ``Out(1)``
        Row bookkeeping for the input side (module docstring).
    """

    def __init__(self, params, credits):
        if not isinstance(params, BlockParams):
            raise TypeError("BlockSequencer takes a BlockParams")
        self._credits = check_int("credits", credits, (1, 1024))
        self.params = p = params
        K, span = 3 + p.stride, row_span(p)
        members = {"loaded": In(range(span)), "out_taken": In(1)}
        if p.weights == "stream":
            members["claimable"] = In(1)
        members.update({"issue": Out(1), "first": Out(1), "last": Out(1),
                        "fold": Out(fold_layout(p)),
                        "low_k": Out(range(span + K), init=K), "image_done": Out(1)})
        super().__init__(members)

    @property
    def latency(self):
        """Cycles from a group's rows being loaded to its first issue: 1 (from a beat taken,
        whose credit is registered first: 2)."""
        return 1

    @property
    def credits(self):
        return self._credits

    def elaborate(self, platform):
        m = Module()
        p = self.params
        H, Ho, s, K, F = p.size, p.out_size, p.stride, 3 + p.stride, p.folds
        CB, CGo = p.cin // p.bits_per_cycle, p.out_groups
        fd = self.fold
        oy, ox, cg, fi = (Signal.like(fd.oy, name="oy"), Signal.like(fd.ox, name="ox"),
                          Signal.like(fd.group, name="group"), Signal.like(fd.fold, name="fold"))
        ky, kx, cb = (Signal.like(fd.ky, name="ky"), Signal.like(fd.kx, name="kx"),
                      Signal.like(fd.cb, name="cb"))
        waddr = Signal.like(fd.w_addr, name="w_addr")
        top_slot = Signal.like(fd.top_slot, init=K - 1, name="top_slot")
        m.d.comb += [fd.oy.eq(oy), fd.ox.eq(ox), fd.group.eq(cg), fd.fold.eq(fi),
                     fd.top_slot.eq(top_slot), fd.w_addr.eq(waddr), fd.ky.eq(ky),
                     fd.kx.eq(kx), fd.cb.eq(cb)]
        mid = Signal(name="mid_group")
        span = row_span(p)
        # Row bookkeeping in registers, so that no adder sits in the control paths:
        #   low_k = max(0, oy*s - 1) + K   (the input side may fill rows below it)
        #   need  = min(H, oy*s + 2)       (rows that must be complete before output row oy)
        low_k = Signal(range(span + K), init=K, name="low_plus_slots")
        need = Signal(range(span), init=min(H, 2), name="rows_needed")
        m.d.comb += self.low_k.eq(low_k)

        # A group starts when its rows are in (rows_ok, registered: one cycle late, and held
        # off for ROW_HOLD cycles after every output row, while need / loaded settle) and the
        # output FIFO has room for every group in flight (space = credits - in flight - level).
        depth = self._credits
        space = Signal(range(depth + 1), init=depth, name="fifo_space")
        rows_ok = Signal(name="rows_ok")
        m.d.sync += rows_ok.eq(self.loaded >= need)
        row_adv = Signal(name="row_advance")
        held = Signal(name="start_held")
        hold = [delay_valid(m, row_adv, k) for k in range(1, ROW_HOLD + 1)]
        m.d.comb += held.eq(hold[0] | hold[1] | hold[2])
        start = Signal(name="group_start")
        m.d.comb += start.eq(~mid & rows_ok & ~held & (space != 0))
        issue = self.issue
        if p.weights == "stream":
            m.d.comb += issue.eq((mid | start) & self.claimable)
        else:
            m.d.comb += issue.eq(mid | start)
        first, last = self.first, self.last
        m.d.comb += [first.eq(fi == 0), last.eq(fi == F - 1)]
        last_cg = cg == CGo - 1
        last_ox = ox == Ho - 1
        last_oy = oy == Ho - 1
        img_done = Signal(name="image_done")
        m.d.comb += [row_adv.eq(issue & last & last_cg & last_ox),
                     img_done.eq(row_adv & last_oy)]
        with m.If(issue):
            m.d.sync += [
                mid.eq(~last),
                fi.eq(Mux(last, 0, fi + 1)),
                waddr.eq(Mux(last & last_cg, 0, waddr + 1)),
                cb.eq(Mux(cb == CB - 1, 0, cb + 1)),
            ]
            with m.If(cb == CB - 1):
                m.d.sync += kx.eq(Mux(kx == 2, 0, kx + 1))
                with m.If(kx == 2):
                    m.d.sync += ky.eq(Mux(ky == 2, 0, ky + 1))
            if p.weight_split:
                with m.If(last):                 # taps 0..7 counted: (2, 2, 0) -> (0, 0, 0)
                    m.d.sync += [ky.eq(0), kx.eq(0)]
            with m.If(last):
                m.d.sync += cg.eq(Mux(last_cg, 0, cg + 1))
                with m.If(last_cg):
                    m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
                    with m.If(last_ox):
                        m.d.sync += [oy.eq(Mux(last_oy, 0, oy + 1)),
                                     top_slot.eq(Mux(top_slot + s >= K, top_slot + s - K,
                                                     top_slot + s)),
                                     need.eq(Mux(last_oy, min(H, 2),
                                                 Mux(need + s >= H, H, need + s))),
                                     low_k.eq(Mux(last_oy, K,
                                                  Mux(oy == 0, K + s - 1, low_k + s)))]
        # the image's rows leave the counters one cycle after its last fold (start is held)
        m.d.comb += self.image_done.eq(delay_valid(m, img_done, 1))
        taken = Signal(name="out_taken_r")
        m.d.sync += [taken.eq(self.out_taken), space.eq(space - (issue & first) + taken)]
        return m
