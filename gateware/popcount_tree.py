"""LUT-efficient, pipelined XNOR-popcount: a bit-heap compressor tree on carry chains.

:func:`popcount_tree` adds to an Amaranth module the logic that computes::

    count = popcount(~(act ^ wgt))          # docs/conventions.md, "Binary values"

over ``n = len(act)`` bit pairs, with a register after every stage, and returns the count and
the latency. :func:`plan_popcount` computes the structure alone (no hardware): the latency, the
LUT estimate, and a pure-Python model of the data path (:meth:`PopcountPlan.evaluate`).

Everything is plain Amaranth (``+``, truth tables read with ``Const.bit_select``, registers):
no vendor primitive, so the same description simulates in Amaranth and Verilator and
synthesises for xc7, ECP5 and iCE40. The structure is chosen for LUT6 devices.

Structure
=========

The sum is kept as a *bit heap*: column ``c`` holds bits of weight ``2**c``. The XNOR of a
pair ``(act[i], wgt[i])`` is never built on its own; it is folded into the first LUT that reads
the pair.

The pairs form ``G`` *groups* of three and ``F ~ G/2`` *loose* pairs
(``n = 3G + F``, one or two pairs left over are counted directly). The value of a group is
``x1 + x2 + x3 = parity + 2 * carry``, where the carry ``(x1 + x2 + x3) >> 1`` is a function
of five nets: the registered parity and the first two pairs (``x3 = parity ^ x1 ^ x2``).

Stage 1, pair parity: one LUT6 per group computes the parity ``x1 ^ x2 ^ x3`` of its XNORs
(column 0).

Stage 2, pair carry: for the ``G - F`` *plain* groups, one LUT5 computes the carry (column 1)
from the registered parity and two pairs. A plain group thus costs two LUTs for three pairs,
but each pair is read by one LUT per stage. This matters: Yosys' ``synth_xilinx`` maps with
ABC9, whose area model prices a LUT6 at 5/3 of a LUT5 (two LUT5 share a site); given both
counter bits in one stage, it pulls the XNOR of one pair out into a LUT2 and turns the two
LUT6 into LUT5, i.e. three LUT cells instead of two. Registers in between prevent that. The
``F`` *fused* groups (their parity and two pairs) and the loose pairs wait in registers.

Stage 3, **fused chains**: the carry of a fused group gets no LUT of its own. Each fused group
and one loose pair form a two-position carry chain (columns 0 and 1)::

    A = (parity, plain carry)  +  D = (xnor of the loose pair, fused carry)  +  cin = parity

Position 0 is a LUT3 (``A ^ xnor``), position 1 a LUT6 (the fused carry from its five nets,
XORed with the ``A`` bit); the carry chain adds the rest for free. Each such chain takes two
parity bits and one plain carry from the heap, which is why about half of the groups can be
fused (``F ~ G/2``, the planner tries a few counts around ``n/7`` and keeps the cheapest). It
writes one bit to each of columns 0, 1 and 2. (A chain needs two positions: Yosys maps an
addition with at most two result bits to plain LUTs, not to the carry chain.)

Stages 3 and later, **chain compressors**: each is one addition ``A + D + cin`` of ``L >= 2``
positions (columns ``c .. c+L-1``) that Yosys maps to a carry chain (xc7: CARRY4) with one
LUT per position:

- ``A`` is a row of registered heap bits, one per column: the carry chain's ``DI`` input,
  which needs no LUT;
- ``D`` is a concatenation of *segments*, small counters whose result bits each depend on at
  most five heap bits, so that ``D[j]`` and the chain's ``A[j] ^ D[j]`` fit in the same LUT6.
  A segment of three positions counts five bits of its column (or three of it and two of the
  next), a segment of two positions three bits, a segment of one position is a plain bit;
- ``cin`` is one more bit of column ``c`` on the carry input (no LUT).

A three-position chain reads ``1 + 5 + 1 = 7`` bits of column ``c`` and one of each of
columns ``c+1``, ``c+2``, and writes one bit to each of columns ``c .. c+3``: it removes five
heap bits with three LUTs (a 6:3 counter removes three with three, a two-operand adder about
one per LUT). A position with a single plain bit (an ``A`` bit alone) feeds the carry chain
directly and needs no LUT. The planner sweeps the columns upwards: chains that pass through a
column take one ``A`` bit there; new chains start where the next two columns can still give
them ``A`` bits (three positions), else two-position chains; a column at the top of the heap
is compressed without ``A`` bits. What the sweep leaves (at most a few bits per column) goes to
long chains chosen by a small dynamic programme, which also builds the final two-row
addition (for ``n <= 256`` the planner also tries the dynamic programme alone). Bits of
weight ``2**W`` and above (``W = ceil_log2(n + 1)``) are dropped: the count is below ``2**W``,
so the arithmetic is exact modulo ``2**W``; chain outputs that can never be 1 are not built.

Yosys puts the narrower operand of an addition on ``DI`` (or, for equal widths, the one made
of fewer pieces): each chain's ``A`` row is therefore one contiguous slice of the stage
register (the register order is chosen for that), and a chain whose ``D`` holds counter
segments takes no ``A`` bit at its top position unless its ``A`` row is such a slice.

Latency and cost
================

Latency: ``plan_popcount(n).latency`` cycles, one per stage (parity, carry, fused chains and
the first compressors, then the chain stages, each cutting the tallest column by about a
factor of three to seven), so it grows with ``log(n)``: 6 cycles at ``n = 64``, 7 at 128,
9 at 576 and 1152, 10 at 2304, 11 at 4608. Among plans within one LUT of the fewest, the one
of lowest latency is kept.

LUT budget (``plan.luts``, LUT6-class cells on xc7; with ``G ~ 2n/7`` and ``F ~ n/7``):

- stage 1: ``G`` parity LUT6, ``~0.286 n``;
- stage 2: ``G - F`` carry LUT5, ``~0.143 n``;
- stage 3, fused chains: ``2F`` LUTs, ``~0.286 n``; they leave ``~3n/7`` heap bits;
- the chain compressors on those bits: ``~0.28 n``;

about 0.99 LUT per input bit, XNOR included, for ``n`` in 576..4608 (1.0 at 64 and 128); Yosys
``synth_xilinx`` agrees within a few LUTs, plus a few shift-register LUTs (SRL16E) for final
count bits that wait several stages. A plain adder tree of the XNOR bits needs about 2.3.
Flip-flops: about 3.8 per input bit (every stage is registered; the pairs of the fused groups
and the loose pairs wait two stages). Measured figures: ``docs/benchmarks.md``.
"""

from dataclasses import dataclass, field
from functools import lru_cache

from amaranth.hdl import Cat, Const, Signal
from amaranth.utils import ceil_log2

__all__ = ["plan_popcount", "popcount_tree", "PopcountPlan"]

_PAIR_KIND = "pair"            # item tag of an input pair in the plan: ("pair", index)
_MAJ_KIND = "maj"              # carry of a group from its parity: ("maj", parity bit, i1, i2)
_ENDGAME = 3                   # column height from which leftover chains must pay off ...
_DP_MIN_RATE = 0.0             # ... at this many bits removed per LUT (0: any gain)


# --------------------------------------------------------------------------------------------
# Abstract plan
# --------------------------------------------------------------------------------------------

@dataclass
class _Seg:
    """A segment of a chain: counts ``inputs`` into positions ``pos .. pos+length-1``.

    ``inputs`` is a list of ``(item, rel_col)``: ``item`` is a bit id (int) or a pair
    ``("pair", i)``; ``rel_col`` is its column relative to the segment's first position.
    """
    pos: int
    length: int
    inputs: list

    def max_value(self):
        return sum(1 << rc for _, rc in self.inputs)



@dataclass
class _Chain:
    col: int                         # column of position 0
    length: int                      # positions
    a: list = field(default_factory=list)      # A bit (or None) of positions 0 .. len(a)-1
    segs: list = field(default_factory=list)
    cin: object = None
    outs: list = field(default_factory=list)   # bit id or None, positions 0 .. length

    def luts(self):
        """LUTs of the chain: one per position whose ``D`` bit is computed (a counter segment,
        a pair or a group carry), or which adds a plain ``D`` bit to an ``A`` bit. A position
        with a single plain bit (``A`` or ``D``) feeds the carry chain directly, no LUT."""
        kind = [None] * self.length
        for s in self.segs:
            plain = (s.length == 1 and len(s.inputs) == 1
                     and not isinstance(s.inputs[0][0], tuple))
            for j in range(s.length):
                kind[s.pos + j] = "plain" if plain else "lut"
        return sum(1 for j, k in enumerate(kind)
                   if k == "lut" or (k == "plain" and j < len(self.a) and self.a[j] is not None))

    def max_value(self):
        return (sum(1 << j for j, b in enumerate(self.a) if b is not None)
                + sum(s.max_value() << s.pos for s in self.segs)
                + (1 if self.cin is not None else 0))


@dataclass
class _PairParity:
    """Parity of the XNORs of three pairs (one LUT6); the majority follows a stage later."""
    pairs: list                      # three input indices
    outs: list = field(default_factory=list)   # [bit id] (column 0)

    def luts(self):
        return 1


@dataclass
class _Majority:
    """Carry bit of three pairs from their registered parity and two of the pairs (one LUT5)."""
    parity: int                      # bit id of the parity
    pairs: list                      # the first two input indices of the group
    outs: list = field(default_factory=list)   # [None, bit id] (column 1)

    def luts(self):
        return 1


@dataclass
class _PairCount:
    """Popcount of one or two pairs (one LUT per output bit)."""
    pairs: list
    outs: list = field(default_factory=list)   # bit ids, columns 0, 1 (None if unused)

    def luts(self):
        return sum(1 for o in self.outs if o is not None)


@dataclass
class _Stage:
    ops: list                        # _PairParity / _Majority / _PairCount / _Chain
    carried_pairs: list              # input indices registered for the next stage
    carried_bits: list               # (col, bit id) passed on unchanged
    heap: list                       # heap after the stage: heap[c] = [bit id, ...]
    pending: list = field(default_factory=list)   # (parity bit, pairs) for _Majority next
    fused: list = field(default_factory=list)     # (parity bit, pairs, loose pair)
    side: list = field(default_factory=list)      # bits registered outside the heap (parities
                                                  # that a fused carry reads a stage later)


@dataclass
class PopcountPlan:
    """The compressor tree for ``n`` pairs (see the module documentation).

    Attributes: ``n``, ``width`` (bits of the count), ``stages`` (list of stages, each a list of
    operations), ``latency`` (= number of stages), ``luts`` (LUT estimate),
    ``pair_counters``, ``chains`` (operation counts) and ``registers`` (flip-flops of the data
    path).
    """
    n: int
    width: int
    stages: list
    out_bits: list                   # bit id (or None = constant 0) of each count bit

    @property
    def latency(self):
        return len(self.stages)

    @property
    def luts(self):
        return sum(op.luts() for st in self.stages for op in st.ops)

    @property
    def pair_counters(self):
        return sum(isinstance(op, (_PairParity, _PairCount)) for st in self.stages for op in st.ops)

    @property
    def chains(self):
        return sum(isinstance(op, _Chain) for st in self.stages for op in st.ops)

    @property
    def registers(self):
        return sum(2 * len(st.carried_pairs) + sum(len(c) for c in st.heap)
                   + len(set(st.side) - {b for c in st.heap for b in c}) for st in self.stages)

    def evaluate(self, xnors):
        """Run the plan on a list of ``n`` XNOR values (0/1) in pure Python, stage by stage as
        the hardware does; returns the count (a model for tests)."""
        if len(xnors) != self.n:
            raise ValueError(f"expected {self.n} values, got {len(xnors)}")
        vals = {(_PAIR_KIND, i): int(x) for i, x in enumerate(xnors)}
        for st in self.stages:
            new = {}
            for op in st.ops:
                if isinstance(op, _PairParity):
                    new[op.outs[0]] = sum(vals[(_PAIR_KIND, p)] for p in op.pairs) & 1
                    continue
                if isinstance(op, _Majority):
                    x1, x2 = (vals[(_PAIR_KIND, p)] for p in op.pairs)
                    total = x1 + x2 + (vals[op.parity] ^ x1 ^ x2)
                elif isinstance(op, _PairCount):
                    total = sum(vals[(_PAIR_KIND, p)] for p in op.pairs)
                else:
                    total = sum(vals[a] << j for j, a in enumerate(op.a) if a is not None)
                    total += sum(_item_value(vals, it) << (seg.pos + rc)
                                 for seg in op.segs for it, rc in seg.inputs)
                    total += vals[op.cin] if op.cin is not None else 0
                for j, o in enumerate(op.outs):
                    if o is not None:
                        new[o] = (total >> j) & 1
            for _, b in st.carried_bits:
                new[b] = vals[b]
            for b in st.side:
                new[b] = vals[b]
            for p in st.carried_pairs:
                new[(_PAIR_KIND, p)] = vals[(_PAIR_KIND, p)]
            vals = new
        return sum(vals[b] << c for c, b in enumerate(self.out_bits) if b is not None)

    def summary(self):
        return (f"n={self.n}: latency {self.latency}, ~{self.luts} LUT6 "
                f"({self.luts / self.n:.3f}/pair), {self.pair_counters} pair counters, "
                f"{self.chains} chains, {self.registers} data FFs")


def _item_value(vals, it):
    """Value (0/1) of a plan item: a bit id, a pair (its XNOR) or a group carry."""
    if isinstance(it, tuple) and it[0] == _MAJ_KIND:
        _, p, i1, i2 = it
        x1, x2 = vals[(_PAIR_KIND, i1)], vals[(_PAIR_KIND, i2)]
        return (x1 + x2 + (vals[p] ^ x1 ^ x2)) >> 1
    return vals[it]


class _Ids:
    def __init__(self):
        self.next = 0

    def new(self):
        self.next += 1
        return self.next - 1


def _chain_outputs(chain, width, ids):
    """Allocate the output bits of ``chain`` (one per position plus the carry), dropping
    columns >= ``width`` and bits that are always 0."""
    top = chain.max_value().bit_length()           # bits of the sum
    chain.outs = []
    for j in range(chain.length + 1):
        col = chain.col + j
        chain.outs.append(ids.new() if (j < top and col < width) else None)


def _first_stage(n, width, ids, fuse=0):
    """Stage 1: the parity of every group of three pairs; one or two pairs left over are
    counted at once.

    The carry of a group follows from its registered parity and two of its pairs (five
    inputs). For the first ``fuse`` groups it is *fused*: built in stage 3 inside a carry-chain
    LUT, together with a *loose* pair (a pair in no group), see :func:`_fused_chains`; their
    pairs and the loose pairs wait two stages. The carries of the other groups are computed in
    stage 2, a LUT5 each."""
    ops, pending, carried, fused = [], [], [], []
    groups = (n - fuse) // 3
    loose = 3 * groups
    for g in range(groups):
        op = _PairParity([3 * g, 3 * g + 1, 3 * g + 2], [ids.new()])
        ops.append(op)
        if g < fuse:
            fused.append((op.outs[0], [3 * g, 3 * g + 1], loose + g))
        else:
            pending.append((op.outs[0], [3 * g, 3 * g + 1]))
        carried += [3 * g, 3 * g + 1]
    carried += list(range(loose, loose + fuse))
    rest = list(range(loose + fuse, n))
    if rest:
        top = len(rest).bit_length()
        ops.append(_PairCount(rest, [ids.new() if (j < top and j < width) else None
                                     for j in range(2)]))
    heap = [[] for _ in range(width)]
    for op in ops:
        for j, o in enumerate(op.outs):
            if o is not None:
                heap[j].append(o)
    return _Stage(ops, carried, [], heap, pending, fused)


def _fused_chains(fused, cols, width):
    """Stage-3 chains of the fused groups, two positions each (columns 0 and 1)::

        A = (parity, stage-2 carry)   D = (xnor of the loose pair, fused carry)   cin = parity

    Position 0 is a LUT3 (the XNOR folded in), position 1 a LUT6: the fused group's carry from
    its parity and two pairs (five inputs), added to the ``A`` bit. The fused carry costs no LUT
    of its own. (Two positions, not one: Yosys maps additions of at most two result bits to
    plain LUTs, not to the carry chain.)"""
    ops = []
    for parity, pairs, loose in fused:
        ch = _Chain(col=0, length=2)
        ch.a = [cols[0].pop(), cols[1].pop()]
        ch.segs = [_Seg(0, 1, [((_PAIR_KIND, loose), 0)]),
                   _Seg(1, 1, [((_MAJ_KIND, parity, pairs[0], pairs[1]), 0)])]
        ch.cin = cols[0].pop()
        ops.append(ch)
    return ops


def _seg_options():
    """Segment shapes ``(x0, x1, x2)``: bits taken from the segment's column and the next two,
    at most 5 nets, value fitting the segment's length (the shortest that holds it)."""
    opts = []
    for x0 in range(1, 6):
        for x1 in range(0, 6 - x0):
            for x2 in range(0, 6 - x0 - x1):
                value = x0 + 2 * x1 + 4 * x2
                if value > 7:
                    continue
                length = value.bit_length()
                opts.append(((x0, x1, x2), length))
    return opts


_SEG_OPTIONS = _seg_options()


def _best_chain(r, width):
    """Best single chain on the remaining column counts ``r`` (a dynamic programme over the
    positions). Returns ``(removal, start, plan, cin, most)`` with ``plan`` a list of
    per-position ``(take_a, shape)`` (``shape`` a segment started there, or None), ``cin`` a
    flag and ``most`` the largest number of bits taken from one column; None if no chain fits.

    A chain with a counting segment (not a plain bit) takes no ``A`` bit at its top position,
    so that ``A`` is narrower than ``D`` (see the module documentation); the top position is
    covered by a segment. Removal = bits consumed - bits produced (positions + carry)."""
    best = None
    for lo in range(width):
        if r[lo] == 0:
            continue
        memo = {}

        def go(p, b0, b1, cov, comb):
            c = lo + p
            if c >= width:
                return None
            key = (p, b0, b1, cov, comb)
            if key in memo:
                return memo[key]
            avail = r[c] - b0
            result = None
            for a in (1, 0):
                if a > avail:
                    continue
                if cov > 0:
                    choices = [None]
                else:
                    choices = [None] + [o for o in _SEG_OPTIONS
                                        if o[0][0] <= avail - a and o[0][1] <= r[c + 1] - b1
                                        and o[0][2] <= r[c + 2]]
                for ch in choices:
                    if ch is None:
                        x = (0, 0, 0)
                        ncov = max(cov - 1, 0)
                        covered = cov > 0
                        ncomb = comb
                    else:
                        x, length = ch
                        ncov = length - 1
                        covered = True
                        ncomb = comb or x != (1, 0, 0)
                    gain = a + sum(x)
                    cin = 1 if p == 0 and avail - a - x[0] >= 1 else 0
                    took = max(a + x[0] + cin + b0, 0)
                    options = []
                    if (a == 0 or not ncomb) and covered and ncov == 0 and p >= 1:
                        outs = p + 1 + (1 if c + 1 < width else 0)
                        options.append((gain + cin - outs, [(a, ch)], cin, took))
                    sub = go(p + 1, b1 + x[1], x[2], ncov, ncomb)
                    if sub is not None:
                        options.append((sub[0] + gain + cin, [(a, ch)] + sub[1], cin,
                                        max(took, sub[3])))
                    for o in options:
                        if result is None or ((o[0], o[3], -len(o[1]))
                                              > (result[0], result[3], -len(result[1]))):
                            result = o
            memo[key] = result
            return result

        res = go(0, 0, 0, 0, False)
        if res is not None and (best is None or ((res[0], res[3], -len(res[1]))
                                                 > (best[0], best[4], -len(best[2])))):
            best = (res[0], lo, res[1], res[2], res[3])
    return best


def _plan_stage(pending, heap, width, ids, compress=True, fuse=(), sweep=True):
    """One compression stage: the carry bits of the groups whose parity the previous stage
    computed, the chains of the ``fuse`` groups (:func:`_fused_chains`), and (if
    ``compress``) chains on the bit ``heap``: a sweep up the columns (if ``sweep``), then the
    dynamic programme on what is left."""
    cols = [list(h) for h in heap] + [[] for _ in range(width + 3 - len(heap))]
    ops = [_Majority(p, list(pairs), [None, ids.new() if width > 1 else None])
           for p, pairs in pending]
    ops += _fused_chains(fuse, cols, width)
    active = []                                   # chains whose positions reach higher columns

    for c in range(width if (compress and sweep) else 0):
        avail = cols[c]
        # 1. chains passing through column c take one A bit each (while their A row is a prefix)
        for ch in active:
            if ch.col < c < ch.col + ch.length and len(ch.a) == c - ch.col and avail:
                ch.a.append(avail.pop())
        active = [ch for ch in active if ch.col + ch.length > c + 1]

        # 2. new chains starting at column c. A chain removes most bits per LUT when every
        # position gets an A bit, so count the bits of columns c+1, c+2 not yet promised to
        # chains from below.
        def free(col):
            claims = sum(1 for ch in active if ch.col < col < ch.col + ch.length
                         and len(ch.a) == c + 1 - ch.col)
            return len(cols[col]) - claims
        free1, free2 = free(c + 1), free(c + 2)
        while True:
            b = len(avail)
            if b >= 7 and free1 >= 1 and free2 >= 1:
                shape, length = (5,), 3          # removes 5 bits with 3 LUTs
            elif b >= 5 and free1 >= 3 and free2 >= 1:
                shape, length = (3, 2), 3        # 3 + 2 bits of columns c, c+1: 5 with 3
            elif b >= 5 and free1 >= 1:
                shape, length = (3,), 2          # removes 3 with 2
            elif b >= 7 and free1 < 1 and not _tall_above(cols, c):
                shape, length = (5,), 3          # top of the heap: 4 with 3
            else:
                break
            ch = _Chain(col=c, length=length)
            ch.a.append(avail.pop())
            seg_in = [(avail.pop(), 0) for _ in range(shape[0])]
            if len(shape) > 1:
                seg_in += [(cols[c + 1].pop(), 1) for _ in range(shape[1])]
                free1 -= shape[1]
            ch.segs.append(_Seg(0, length, seg_in))
            if avail:
                ch.cin = avail.pop()
            ops.append(ch)
            active.append(ch)
            free1 -= 1
            if length == 3:
                free2 -= 1

    # 4. what the column sweep left (at most three bits per column): long chains
    while compress and max(len(h) for h in cols) > 1:
        r = [len(h) for h in cols]
        found = _best_chain(r, width)
        if found is None or found[0] < 0 or (found[0] == 0 and found[4] < 2):
            break
        if max(r) > _ENDGAME and found[0] < _DP_MIN_RATE * len(found[2]):
            break
        _, lo, plan, cin, _ = found
        ch = _Chain(col=lo, length=len(plan))
        for p, (a, shape) in enumerate(plan):
            ch.a.append(cols[lo + p].pop() if a else None)
            if shape is not None:
                (x0, x1, x2), length = shape
                seg_in = [(cols[lo + p].pop(), 0) for _ in range(x0)]
                seg_in += [(cols[lo + p + 1].pop(), 1) for _ in range(x1)]
                seg_in += [(cols[lo + p + 2].pop(), 2) for _ in range(x2)]
                ch.segs.append(_Seg(p, length, seg_in))
        if cin:
            ch.cin = cols[lo].pop()
        while ch.a and ch.a[-1] is None:
            ch.a.pop()
        ops.append(ch)

    return _finish_stage(ops, cols, width, ids)


def _tall_above(cols, c):
    """True if a column above ``c`` still holds bits (then column ``c`` can wait for them)."""
    return any(len(h) > 0 for h in cols[c + 1:])


def _finish_stage(ops, cols, width, ids):
    """Allocate the outputs of ``ops`` and build the heap after the stage."""
    new_heap = [[] for _ in range(width)]
    for op in ops:
        if isinstance(op, _Chain):
            _chain_outputs(op, width, ids)
            for j, o in enumerate(op.outs):
                if o is not None:
                    new_heap[op.col + j].append(o)
        else:
            for j, o in enumerate(op.outs):
                if o is not None:
                    new_heap[j].append(o)
    carried_bits = []
    for c in range(width):
        for b in cols[c]:
            carried_bits.append((c, b))
            new_heap[c].append(b)
    return _Stage(ops, [], carried_bits, new_heap)


def _plan(n, fuse, sweep=True):
    width = ceil_log2(n + 1)
    ids = _Ids()
    stages = [_first_stage(n, width, ids, fuse)]
    while stages[-1].pending or stages[-1].fused or max(len(h) for h in stages[-1].heap) > 1:
        prev = stages[-1]
        if prev.pending:
            # while carry bits are pending, the parity bits wait for them (one stage): the
            # chains then find A bits in column 1 too; the fused groups wait with them
            st = _plan_stage(prev.pending, prev.heap, width, ids, compress=False)
            st.fused = prev.fused
            st.carried_pairs = [p for _, pairs, loose in prev.fused for p in (*pairs, loose)]
            st.side = [parity for parity, _, _ in prev.fused]
        else:
            st = _plan_stage([], prev.heap, width, ids, fuse=prev.fused, sweep=sweep)
        stages.append(st)
        if len(stages) > 64:
            raise RuntimeError("popcount planner does not converge")
    heap = stages[-1].heap
    out_bits = [h[0] if h else None for h in heap]
    return PopcountPlan(n, width, stages, out_bits)


def _fuse_candidates(n):
    """Numbers of fused groups worth trying (0, the plain tree, among them). A fused chain takes
    two parity bits and one stage-2 carry, so at most half of the groups are fused; with
    ``n = 3 * groups + fuse`` that is ``fuse ~ n / 7``. The later stages react to the count
    irregularly, so a few counts below that are tried too."""
    cands = {0}
    for f in range(max(n // 7 - 6, 1), n // 7 + 2):
        groups = (n - f) // 3
        if 2 * f <= groups:
            cands.add(f)
    return sorted(cands)


@lru_cache(maxsize=32, typed=True)
def plan_popcount(n):
    """Plan the compressor tree for ``n >= 1`` pairs; returns a :class:`PopcountPlan` (cached:
    treat it as read-only)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    # small widths: also plans without the column sweep (the dynamic programme alone), which
    # are sometimes shorter there
    plans = [_plan(n, fuse, sweep) for fuse in _fuse_candidates(n)
             for sweep in ((True, False) if n <= 256 else (True,))]
    fewest = min(p.luts for p in plans)
    # the fewest LUTs; one LUT more buys a cycle less of latency (ties: the fewest fused groups)
    return min((p for p in plans if p.luts <= fewest + 1), key=lambda p: (p.latency, p.luts))


# --------------------------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------------------------

def _truth_table(nets_of_inputs, fn):
    """Truth table (int) of ``fn(values)`` over the concatenated nets of the inputs."""
    widths = [w for w, _ in nets_of_inputs]
    total = sum(widths)
    tt = 0
    for idx in range(1 << total):
        vals = []
        shift = 0
        for w, kind in nets_of_inputs:
            bits = (idx >> shift) & ((1 << w) - 1)
            shift += w
            if kind == "pair":      # (act, wgt): XNOR
                vals.append(1 if (bits & 1) == (bits >> 1) else 0)
            elif kind == "maj":     # (parity, act1, wgt1, act2, wgt2): carry of the group
                p, a1, w1, a2, w2 = ((bits >> k) & 1 for k in range(5))
                x1, x2 = int(a1 == w1), int(a2 == w2)
                vals.append((x1 + x2 + (p ^ x1 ^ x2)) >> 1)
            else:
                vals.append(bits)
        if fn(vals):
            tt |= 1 << idx
    return tt, total


def _lut(m, nets, tt, name):
    """A named 1-bit signal = truth table ``tt`` indexed by ``Cat(nets)`` (one LUT up to 6)."""
    sig = Signal(name=name)
    m.d.comb += sig.eq(Const(tt, 1 << len(nets)).bit_select(Cat(*nets), 1))
    return sig


def _count_bits(m, inputs, weights, n_out, values, name):
    """``n_out`` bits of ``sum(value(input) << weight)``; ``inputs`` are bit ids, pairs or group
    carries (``("maj", parity, i1, i2)``)."""
    nets, kinds = [], []
    for it in inputs:
        if isinstance(it, tuple) and it[0] == _MAJ_KIND:
            _, p, i1, i2 = it
            nets += [values[p], *values[(_PAIR_KIND, i1)], *values[(_PAIR_KIND, i2)]]
            kinds.append((5, "maj"))
        elif isinstance(it, tuple):
            a, w = values[it]
            nets += [a, w]
            kinds.append((2, "pair"))
        else:
            nets.append(values[it])
            kinds.append((1, "bit"))
    outs = []
    for j in range(n_out):
        tt, _ = _truth_table(kinds,
                             lambda v, j=j: (sum(x << s for x, s in zip(v, weights)) >> j) & 1)
        outs.append(_lut(m, nets, tt, f"{name}_{j}"))
    return outs


def _majority_bit(m, parity, pair1, pair2, name):
    """``(x1 + x2 + x3) >> 1`` of a group whose XNOR parity ``x1 ^ x2 ^ x3`` is known."""
    nets = [parity, *pair1, *pair2]
    tt = 0
    for idx in range(32):
        p, a1, w1, a2, w2 = ((idx >> k) & 1 for k in range(5))
        x1, x2 = int(a1 == w1), int(a2 == w2)
        x3 = p ^ x1 ^ x2
        if x1 + x2 + x3 >= 2:
            tt |= 1 << idx
    return _lut(m, nets, tt, f"{name}_maj")


def popcount_tree(m, act, wgt, *, domain="sync", name="pct"):
    """Add the compressor tree for ``popcount(~(act ^ wgt))`` to module ``m``.

    ``act`` and ``wgt`` are Amaranth values of equal width ``n >= 1`` (bit ``i`` of each forms
    pair ``i``). Every stage ends in registers of clock domain ``domain`` (without reset:
    the data path needs none). Returns ``(count, latency)``: ``count`` is a
    ``ceil_log2(n + 1)``-bit signal valid ``latency`` clock cycles after ``act`` / ``wgt``
    (``latency == plan_popcount(n).latency``).
    """
    n = len(act)
    if len(wgt) != n:
        raise ValueError(f"act and wgt differ in width ({n} and {len(wgt)})")
    plan = plan_popcount(n)
    values = {("pair", i): (act[i], wgt[i]) for i in range(n)}
    for k, st in enumerate(plan.stages):
        produced = {}
        for i, op in enumerate(st.ops):
            tag = f"{name}_s{k + 1}_{i}"
            if isinstance(op, _PairParity):
                # parity of three XNORs: one LUT6 reading each pair once in this stage
                bits = _count_bits(m, [("pair", p) for p in op.pairs], [0, 0, 0], 1, values, tag)
                produced[op.outs[0]] = bits[0]
                continue
            if isinstance(op, _Majority):
                # carry of the group: x3 = parity ^ x1 ^ x2, so a LUT5 of the registered parity
                # and the registered first two pairs
                if op.outs[1] is not None:
                    produced[op.outs[1]] = _majority_bit(m, values[op.parity],
                                                         values[("pair", op.pairs[0])],
                                                         values[("pair", op.pairs[1])], tag)
                continue
            if isinstance(op, _PairCount):
                inputs = [("pair", p) for p in op.pairs]
                n_out = max(j for j, o in enumerate(op.outs) if o is not None) + 1
                bits = _count_bits(m, inputs, [0] * len(inputs), n_out, values, tag)
                for j, o in enumerate(op.outs):
                    if o is not None:
                        produced[o] = bits[j]
                continue
            # chain: A + D + cin
            d = [None] * op.length
            for si, seg in enumerate(op.segs):
                if (seg.length == 1 and len(seg.inputs) == 1
                        and not isinstance(seg.inputs[0][0], tuple)):
                    d[seg.pos] = values[seg.inputs[0][0]]
                    continue
                bits = _count_bits(m, [it for it, _ in seg.inputs], [rc for _, rc in seg.inputs],
                                   seg.length, values, f"{tag}_d{seg.pos}")
                for j in range(seg.length):
                    d[seg.pos + j] = bits[j]
            dvec = Cat(*(x if x is not None else Const(0, 1) for x in d))
            total = Signal(op.length + 1, name=f"{tag}_sum")
            expr = dvec
            if op.a:
                expr = _a_row(values, op.a) + dvec
            if op.cin is not None:
                expr = expr + values[op.cin]
            m.d.comb += total.eq(expr)
            for j, o in enumerate(op.outs):
                if o is not None:
                    produced[o] = total[j]
        for c, b in st.carried_bits:
            produced[b] = values[b]
        for b in st.side:
            produced[b] = values[b]
        # register: the A rows of the next stage's chains first, each contiguous
        order = []
        if k + 1 < len(plan.stages):
            for op in plan.stages[k + 1].ops:
                if isinstance(op, _Chain):
                    order += [b for b in op.a if b is not None]
        seen = set(order)
        order += [b for b in produced if b not in seen]
        pairs = st.carried_pairs
        width = len(order) + 2 * len(pairs)
        reg = Signal(width, name=f"{name}_r{k + 1}", reset_less=True)
        m.d[domain] += reg.eq(Cat(*[produced[b] for b in order],
                                   *[x for p in pairs for x in values[("pair", p)]]))
        values = {}
        for idx, b in enumerate(order):
            values[b] = reg[idx]
        for j, p in enumerate(pairs):
            values[("pair", p)] = (reg[len(order) + 2 * j], reg[len(order) + 2 * j + 1])
        values["__reg__"] = (reg, {b: idx for idx, b in enumerate(order)})
    count = Signal(plan.width, name=f"{name}_count")
    m.d.comb += count.eq(Cat(*(values[b] if b is not None else Const(0, 1)
                               for b in plan.out_bits)))
    return count, plan.latency


def _a_row(values, a_ids):
    """The ``A`` row of a chain: one slice of the stage register when its bits are contiguous
    (they are, by construction of the register order)."""
    reg, index = values["__reg__"]
    if None not in a_ids:
        idx = [index[b] for b in a_ids]
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return reg[idx[0]:idx[0] + len(idx)]
    return Cat(*(values[b] if b is not None else Const(0, 1) for b in a_ids))
