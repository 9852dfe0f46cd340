"""Fold planner: lanes P and bits per cycle B of every stage (and the stem's lanes) for a device
and a target frame rate, from a resource model calibrated on the measured engines.

``plan_network(meta, device, target_fps, clock_mhz)`` (``meta``: an export's metadata) finds,
for every stage, the legal ``(P, B)`` with the fewest lanes' worth of hardware whose cycles per
image meet ``clock / target_fps`` (with the measured overhead, :data:`CYCLE_MARGIN`); then
gives every stage the cheapest choice that is no slower than the slowest stage (so no stage
idles more than :data:`MAX_IDLE` at the planned rate), the stem the fewest lanes that keep
pace, and checks the total against the device. A stage whose weights do not fit the block RAM
left is marked ``weights: stream`` (largest weight memory first). If something still does not
fit, :class:`BincountError` with one line names the resource and by how much.

Resource model (xc7 LUT6 / FF; 18-Kbit block RAMs; DSP = one 18 x 25 multiplier), per binary
block with ``P`` lanes of ``B`` bits (``9*B/8`` with split weights, ``bits_per_fold``):

    LUT  = LUT_PER_BIT * P*B + LUT_PER_LANE * P        FF = FF_PER_BIT * P*B + FF_PER_LANE * P
    BRAM = sum of bram_blocks(width, depth) over the weight memories and the bit and residual
           line buffers (the per-group constant ROMs, at most Cout/P words, go to LUTs: with
           that rule the model gives exactly the measured ECP5 DP16KD counts of stages 1, 2
           and 3, 100 / 104 / 168 (stage 3 measured again after its split weights' tap 8 got
           a second window buffer, ``bincount report --target ecp5 --engines --engine-stages
           3 --engine-forms binarized --engine-no-fmax --engine-post-lanes 8
           --engine-weight-ram auto --engine-constant-ram auto``; 160 before, 163 with
           512-word banks); xc7 measured fewer,
           40 / 89 / 163 with 512-word banks, as Yosys puts some small memories in LUT RAM
           there, so the model is an upper bound for xc7; banks as the BankedRAM builds them,
           :func:`~bincount.gateware.banked_ram.default_bank_depth`;
           the default network at P = 1, B = 1 and one stem lane, the ULX3S board design:
           106 by the model, 110 DP16KD after synth_ecp5 of the whole board: Yosys puts
           stage 4's per-group constant ROMs in block RAM, which the model gives to LUTs)
    DSP  = P * ((form == baseline) + (rprelu == trained))

and for the stem ``LUT_PER_LANE * P0`` (not measured: the per-lane figure of a block is taken),
``3 * P0`` DSP; the head 1 DSP. The constants and their sources are in :data:`MODEL`. ECP5
devices count LUT4s: the LUT estimate is multiplied by :data:`ECP5_LUT4_PER_LUT6`.
"""

from dataclasses import replace

from bincount.errors import BincountError
from bincount.gateware.block_params import BlockParams, bram_blocks

__all__ = ["DEVICES", "MODEL", "plan_network", "format_plan", "CYCLE_MARGIN", "MAX_IDLE"]

#: Device capacities: LUTs (ECP5: LUT4, others LUT6), flip-flops, 18-Kbit block RAMs, DSP
#: multipliers (ECP5 MULT18X18D, 7-series / UltraScale+ DSP48). Data sheets: Lattice ECP5
#: family (LFE5U-85F, -45F); Xilinx DS180 (XC7A100T: 135 RAMB36 = 270 RAMB18); DS891
#: (XCZU7EV: 312 RAMB36 = 624 RAMB18; its 96 UltraRAMs are not used).
DEVICES = {
    "ecp5-85f": {"family": "ecp5", "lut": 83640, "ff": 83640, "bram": 208, "dsp": 156},
    "ecp5-45f": {"family": "ecp5", "lut": 43848, "ff": 43848, "bram": 108, "dsp": 72},
    "xc7a100t": {"family": "xc7", "lut": 63400, "ff": 126800, "bram": 270, "dsp": 240},
    "xczu7ev": {"family": "xczu", "lut": 230400, "ff": 460800, "bram": 624, "dsp": 1728},
}

#: Measured figures the model is calibrated on (docs/benchmarks.md, "Stage engines:
#: resources" at P = 8, B = 64, binarized form, xc7 synth_xilinx; "XNOR-popcount LUT per input
#: bit" at N = 576).
_MEASURED = {
    "popcount_lut_per_bit": 1.118,          # XnorPopcount, N = 576, xc7 LUT/bit
    "popcount_ff_per_bit": 1697 / 576,      # its flip-flops per input bit
    "popcount_ecp5_lut4_per_bit": 2.880,    # the same lane on ECP5 (LUT4 per bit)
    "stage_lut": {1: 19326, 2: 16499, 3: 18492, 4: 24712},
    "stage_ff": {1: 17156, 2: 19800, 3: 29937, 4: 36969},
    "lanes": 8, "bits": 64, "blocks": 4,
}


def _per_lane(key, per_bit):
    m = _MEASURED
    pb = m["lanes"] * m["bits"] * m["blocks"]
    rest = [(v - per_bit * pb) / (m["lanes"] * m["blocks"]) for v in m[key].values()]
    return max(rest)


#: Model constants (see the module docstring): per lane the largest residual of the four
#: stages, so the estimate is an upper bound of the measured engines.
MODEL = {
    "LUT_PER_BIT": _MEASURED["popcount_lut_per_bit"],
    "FF_PER_BIT": _MEASURED["popcount_ff_per_bit"],
    "LUT_PER_LANE": _per_lane("stage_lut", _MEASURED["popcount_lut_per_bit"]),
    "FF_PER_LANE": _per_lane("stage_ff", _MEASURED["popcount_ff_per_bit"]),
}
#: ECP5 LUT4 per xc7 LUT6 (the popcount lane measured on both; applied to the whole estimate).
ECP5_LUT4_PER_LUT6 = _MEASURED["popcount_ecp5_lut4_per_bit"] / _MEASURED["popcount_lut_per_bit"]
#: Memories below this size are taken as LUT RAM / registers (no block RAM).
BRAM_MIN_BITS = 1024
#: Largest measured ratio of a layer's cycles to its ideal (docs/benchmarks.md: 1.016).
CYCLE_MARGIN = 1.016
#: Largest fraction of the planned interval a stage may idle: 1/9 and a little, because a stage
#: whose weights are split (BlockParams.weight_split) takes 8/9 of the cycles of the same
#: folding unsplit, and the two kinds of stage must be able to run side by side.
MAX_IDLE = 0.12


def _pow2s(limit):
    v = 1
    while v <= limit:
        yield v
        v *= 2


def _blocks(meta, stage, lanes, bits):
    fmt = meta["formats"]
    out = []
    for m in meta["layers"]:
        if not m["name"].startswith(f"stage{stage}."):
            continue
        if m["downsample"] == "real":
            raise BincountError(f"layer {m['name']}: the real 1x1 downsample shortcut is not "
                                f"implemented in the engine; export with the flag "
                                f"shortcut=concat")
        out.append(BlockParams(
            name=m["name"], cin=int(m["cin"]), cout=int(m["cout"]), stride=int(m["stride"]),
            size=int(m["in_size"]), out_size=int(m["out_size"]), pad_bit=int(m["pad_bit"]),
            form=m["form"], rsign=bool(m["rsign"]), downsample=m["downsample"],
            rprelu=m["rprelu"], lanes=lanes, bits_per_cycle=bits,
            res_bits=int(fmt["res_bits"]), mul_bits=int(fmt["mul_bits"]),
            off_bits=int(fmt["off_bits"]), slope_bits=int(fmt["slope_bits"])))
    if not out:
        raise BincountError(f"the export has no layers of stage {stage}")
    return out


def _legal(blocks):
    """Legal ``(P, B)`` of a stage: powers of two, P dividing every Cin and Cout, B every Cin."""
    pmax = min(min(b.cin, b.cout) for b in blocks)
    bmax = min(b.cin for b in blocks)
    return [(p, b) for p in _pow2s(pmax) for b in _pow2s(bmax)
            if all(x.cin % p == 0 and x.cout % p == 0 and x.cin % b == 0 for x in blocks)]


def _mem(width, depth):
    return 0 if width * depth < BRAM_MIN_BITS else bram_blocks(width, depth)


def block_resources(b, streamed=False):
    """``{"lut", "ff", "bram", "dsp", "weight_bram"}`` of one block by the model."""
    p, n = b.lanes, b.lanes * b.bits_per_fold
    weight = 0
    if not streamed:
        weight = sum(_mem(w, len(words)) for _, w, words in _weight_shapes(b))
    rows, wb = 3 + b.stride, max(b.bits_per_cycle, b.lanes)
    # the bit line buffer (twice with split weights: the tap-8 copy) and the residual buffer
    other = ((1 + b.weight_split) * _mem(wb, rows * b.size * (b.cin // wb) + 1)
             + _mem(b.beat_bits, rows * b.size * b.in_groups))
    return {"lut": MODEL["LUT_PER_BIT"] * n + MODEL["LUT_PER_LANE"] * p,
            "ff": MODEL["FF_PER_BIT"] * n + MODEL["FF_PER_LANE"] * p,
            "bram": weight + other, "weight_bram": weight,
            "dsp": p * ((b.form == "baseline") + (b.rprelu == "trained"))}


def _weight_shapes(b):
    """``[(name, width, range(depth))]`` of the weight memories (shapes only)."""
    w, f, g = b.lanes * b.bits_per_cycle, b.folds, b.out_groups
    if b.weight_split:
        cb = b.cin // b.bits_per_cycle
        return [("weights", w, range(g * 8 * cb)), ("weights_tap8", w // 8, range(g * 8 * cb))]
    return [("weights", w, range(g * f))]


def _stage_cost(blocks, streamed=False):
    tot = {"lut": 0.0, "ff": 0.0, "bram": 0, "dsp": 0, "weight_bram": 0}
    for b in blocks:
        for k, v in block_resources(b, streamed).items():
            tot[k] += v
    return tot


def _cost(cost, dev):
    """Fractions of the device a stage uses, summed over LUT, FF, block RAM and DSP."""
    return (cost["lut"] / dev["lut"] + cost["ff"] / dev["ff"] + cost["bram"] / dev["bram"]
            + cost["dsp"] / dev["dsp"])


def plan_network(meta, device, target_fps, clock_mhz=100.0):
    """The plan dict (module docstring) or :class:`BincountError` with one line."""
    if device not in DEVICES:
        raise BincountError(f"device {device!r}; expected one of {', '.join(DEVICES)}")
    for name, v in (("target fps", target_fps), ("clock MHz", clock_mhz)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise BincountError(f"{name} must be a positive number, got {v!r}")
    dev = DEVICES[device]
    lut_scale = ECP5_LUT4_PER_LUT6 if dev["family"] == "ecp5" else 1.0
    budget = int(clock_mhz * 1e6 / target_fps)
    stages = {}
    for s in (1, 2, 3, 4):
        base = _blocks(meta, s, 1, 1)
        options = []
        for p, b in _legal(base):
            blocks = [replace(x, lanes=p, bits_per_cycle=b) for x in base]
            cycles = max(x.ideal_cycles for x in blocks)
            options.append((cycles, blocks, _stage_cost(blocks)))
        stages[s] = options
    # the slowest interval T (least hardware) that meets the budget and that every stage can
    # match within MAX_IDLE; then per stage the cheapest option in [(1 - MAX_IDLE) T, T]
    limit = budget / CYCLE_MARGIN
    candidates = sorted({o[0] for opts in stages.values() for o in opts if o[0] <= limit},
                        reverse=True)
    if not candidates or any(min(o[0] for o in opts) > limit for opts in stages.values()):
        s, opts = max(stages.items(), key=lambda kv: min(o[0] for o in kv[1]))
        fastest = min(o[0] for o in opts) * CYCLE_MARGIN
        raise BincountError(f"throughput: stage {s} needs at least {fastest:.0f} cycles per "
                            f"image at its widest folding, more than the {budget} cycles "
                            f"per image that {target_fps:g} images/s leave at {clock_mhz:g} MHz "
                            f"(it would need {fastest * target_fps / 1e6:,.1f} MHz, or at most "
                            f"{clock_mhz * 1e6 / fastest:,.1f} images/s at {clock_mhz:g} MHz)")
    chosen = None
    for interval in candidates:
        window = {s: [o for o in opts if (1 - MAX_IDLE) * interval <= o[0] <= interval]
                  for s, opts in stages.items()}
        if all(window.values()):
            chosen = {s: min(w, key=lambda o: (_cost(o[2], dev), -o[0]))
                      for s, w in window.items()}
            break
    if chosen is None:
        raise BincountError(f"balance: no interval up to {limit:.0f} cycles lets every stage "
                            f"idle at most {MAX_IDLE:.0%} with legal foldings")
    interval = max(o[0] for o in chosen.values())
    st, hd = meta["stem"], meta["head"]
    c0, size = int(st["cout"]), int(st["size"])
    stem_lanes = next((p for p in _pow2s(c0) if c0 % p == 0
                       and size * size * (c0 // p) * 9 <= interval), None)
    if stem_lanes is None:
        raise BincountError(f"throughput: the stem needs {size * size * 9} cycles per image "
                            f"even with {c0} lanes, more than the {interval} of the stages")
    stem_cycles = size * size * (c0 // stem_lanes) * 9
    head_cycles = int(hd["classes"]) * int(hd["cin"])
    if head_cycles > interval:
        raise BincountError(f"throughput: the head needs {head_cycles} cycles per image, more "
                            f"than the {interval} of the stages")
    # 3. resources; stream the largest weight memories while block RAM is short
    stem_cost = {"lut": MODEL["LUT_PER_LANE"] * stem_lanes, "ff": MODEL["FF_PER_LANE"] * stem_lanes,
                 "bram": _mem(3 * int(meta["formats"]["in_bits"]), 4 * size + 1)
                 + _mem(3 * stem_lanes * int(meta["formats"]["real_w_bits"]), 9 * c0 // stem_lanes),
                 "dsp": 3 * stem_lanes}
    head_cost = {"lut": MODEL["LUT_PER_LANE"], "ff": MODEL["FF_PER_LANE"],
                 "bram": _mem(int(meta["formats"]["real_w_bits"]), head_cycles), "dsp": 1}
    streamed = set()

    def total():
        t = {k: stem_cost[k] + head_cost[k] for k in ("lut", "ff", "bram", "dsp")}
        for s, (_, blocks, cost) in chosen.items():
            c = _stage_cost(blocks, streamed=s in streamed) if s in streamed else cost
            for k in t:
                t[k] += c[k]
        return t

    t = total()
    while t["bram"] > dev["bram"]:
        left = [s for s in chosen if s not in streamed and chosen[s][2]["weight_bram"] > 0]
        if not left:
            break
        streamed.add(max(left, key=lambda s: chosen[s][2]["weight_bram"]))
        t = total()
    t["lut"] *= lut_scale
    for k, unit in (("lut", "LUT4" if dev["family"] == "ecp5" else "LUT"), ("ff", "FF"),
                    ("bram", "18-Kbit block RAMs"), ("dsp", "DSP multipliers")):
        if t[k] > dev[k]:
            raise BincountError(f"{k.upper()} does not fit {device}: the plan needs "
                                f"{t[k]:,.0f} {unit}, the device has {dev[k]:,} "
                                f"({t[k] - dev[k]:,.0f} over, {t[k] / dev[k]:.0%})")
    parts = [{"name": "stem", "lanes": stem_lanes, "cycles_per_image": stem_cycles,
              "weight_bits": 27 * c0 * int(meta["formats"]["real_w_bits"]),
              "bram": stem_cost["bram"], "dsp": stem_cost["dsp"], "weights": "memory"}]
    for s, (cycles, blocks, cost) in sorted(chosen.items()):
        c = _stage_cost(blocks, streamed=s in streamed)
        parts.append({
            "name": f"stage{s}", "lanes": blocks[0].lanes, "bits_per_cycle":
            blocks[0].bits_per_cycle, "cycles_per_image": cycles,
            "idle": round(1 - cycles / interval, 4),
            "weight_bits": sum(b.n * b.cout for b in blocks),
            "memories": [{"block": b.name, "name": n, "width": w, "depth": len(r)}
                         for b in blocks for n, w, r in _weight_shapes(b)],
            "lut": round(c["lut"] * lut_scale), "bram": c["bram"], "dsp": c["dsp"],
            "weights": "stream" if s in streamed else "memory",
            "weight_stream_bits_per_cycle": sum(b.lanes * b.bits_per_cycle for b in blocks)
            if s in streamed else 0})
    parts.append({"name": "head", "lanes": parts[-1]["lanes"], "cycles_per_image": head_cycles,
                  "weight_bits": head_cycles * int(meta["formats"]["real_w_bits"]),
                  "bram": head_cost["bram"], "dsp": 1, "weights": "memory"})
    fps = clock_mhz * 1e6 / (interval * CYCLE_MARGIN)
    return {"device": device, "clock_mhz": clock_mhz, "target_fps": target_fps,
            "budget_cycles": budget, "interval_cycles": interval,
            "planned_fps": round(fps, 1), "parts": parts,
            "total": {k: round(v) for k, v in t.items()},
            "capacity": {k: dev[k] for k in ("lut", "ff", "bram", "dsp")},
            "model": {k: round(v, 3) for k, v in MODEL.items()},
            "lut_unit": "LUT4" if dev["family"] == "ecp5" else "LUT6"}


def format_plan(plan):
    """Lines of text: one per part, then the totals against the device."""
    lines = [f"plan for {plan['device']} at {plan['clock_mhz']:g} MHz, target "
             f"{plan['target_fps']:g} images/s ({plan['budget_cycles']} cycles per image): "
             f"interval {plan['interval_cycles']} cycles, about {plan['planned_fps']:g} images/s"]
    for p in plan["parts"]:
        knob = f"P={p['lanes']}" + (f" B={p['bits_per_cycle']}" if "bits_per_cycle" in p else "")
        extra = f" idle {p['idle']:.1%}" if "idle" in p else ""
        lines.append(f"  {p['name']:7s} {knob:12s} {p['cycles_per_image']:>9,} cycles/image"
                     f"{extra}  weights {p['weight_bits']:,} bits ({p['weights']})  "
                     f"BRAM {p['bram']}  DSP {p['dsp']}")
    t, c = plan["total"], plan["capacity"]
    lines.append(f"  total: {plan['lut_unit']} {t['lut']:,}/{c['lut']:,}  FF {t['ff']:,}/"
                 f"{c['ff']:,}  BRAM {t['bram']}/{c['bram']}  DSP {t['dsp']}/{c['dsp']}")
    return lines
