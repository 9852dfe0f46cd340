"""Small random binary blocks for engine tests: an export-shaped dict of one layer and its
expected output from the integer reference (``network_reference``), plus an Amaranth-simulator
stream driver with random input gaps and output stalls."""

import json

import numpy as np
from amaranth.sim import Simulator

from bincount.gateware.block_params import from_beats, to_beats  # noqa: F401 (re-exported)
from bincount.model.export.bits import pack_bits
from bincount.model.export.net_format import DEFAULT_FORMAT
from bincount.model.export.network_reference import _Binary

__all__ = ["tiny_export", "reference_block", "to_beats", "from_beats", "run_stream",
           "reference_tensors", "window_bits", "to_int", "pack", "unpack", "run_cycles"]


def tiny_export(cin=8, cout=8, stride=1, size=6, form="binarized", rsign=True, rprelu="pow2",
                pad_bit=1, seed=0, name="stage1.conv1"):
    """A one-layer ``bincount-network``-shaped dict (meta + ``{name}.*`` arrays), random but
    with thresholds inside the count range, both signs of hi - lo and of the slopes."""
    rng = np.random.default_rng(seed)
    n = 9 * cin
    down = None if (cin == cout and stride == 1) else "concat"
    layer = {"name": name, "cin": cin, "cout": cout, "k": 3, "stride": stride, "n": n,
             "in_size": size, "out_size": size // stride, "pad_bit": pad_bit, "form": form,
             "rsign": rsign, "downsample": down, "rprelu": rprelu,
             "shift": 14 if form == "baseline" else None}
    meta = {"layers": [layer], "formats": DEFAULT_FORMAT.as_dict()}
    p = name + "."
    a = {p + "weight_bits": pack_bits(rng.integers(0, 2, (cout, n)))}
    if rsign:
        a[p + "rsign_bias"] = rng.integers(-300, 300, cin)
    if form == "binarized":
        a[p + "threshold"] = rng.integers(n // 2 - 6, n // 2 + 6, cout)
        a[p + "threshold"][:2] = [0, n + 1]
        a[p + "hi"] = rng.integers(-2000, 2000, cout)
        a[p + "lo"] = rng.integers(-2000, 2000, cout)
        a[p + "hi"][0], a[p + "lo"][0] = 32767, -32768
    else:
        a[p + "mul"] = rng.integers(-(1 << 17), 1 << 17, cout)
        a[p + "offset"] = rng.integers(-(1 << 24), 1 << 24, cout)
        a[p + "shift"] = np.array(layer["shift"])
    if rprelu is not None:
        a[p + "rprelu.bias0"] = rng.integers(-500, 500, cout)
        a[p + "rprelu.bias1"] = rng.integers(-500, 500, cout)
        if rprelu == "pow2":
            a[p + "rprelu.slope_exp"] = rng.integers(-15, 4, cout)
            a[p + "rprelu.slope_neg"] = rng.integers(0, 2, cout)
        else:
            a[p + "rprelu.slope"] = rng.integers(-(1 << 15), 1 << 15, cout)
    a = {k: (v if v.dtype == np.uint8 else v.astype(np.int64)) for k, v in a.items()}
    a["meta_json"] = np.array(json.dumps(meta))
    a["meta"] = meta
    return a


def reference_block(export, x, name="stage1.conv1"):
    """Expected ``[Cout, Ho, Wo]`` of the block for input ``x [Cin, H, W]`` (int64)."""
    layer = next(m for m in export["meta"]["layers"] if m["name"] == name)
    b = _Binary(layer, export, np.int64)
    out = b.run(np.moveaxis(np.asarray(x, np.int64), 0, -1)[None], DEFAULT_FORMAT, None)
    return np.moveaxis(out[0], -1, 0)


def run_stream(dut, beats, expected_count, seed=0, gap=0.3, stall=0.3, max_cycles=200000,
               weights=None):
    """Drive ``beats`` into ``dut.i`` (random gaps with probability ``gap``), accept from
    ``dut.o`` (ready low with probability ``stall``) until ``expected_count`` beats arrived;
    with ``weights`` (a list of words) also drive them into ``dut.w``, with gaps likewise.
    Returns ``(out_beats, cycles)``."""
    rng = np.random.default_rng(seed)
    got = []
    state = {"cycles": 0}

    async def tb(ctx):
        k = kw = 0
        w_ready = dut.i.ready                   # sampled but unused without weights
        for t in range(max_cycles):
            send = k < len(beats) and rng.random() >= gap
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, beats[k])
            if weights is not None:
                w_send = kw < len(weights) and rng.random() >= gap
                ctx.set(dut.w.valid, w_send)
                if w_send:
                    ctx.set(dut.w.payload, weights[kw])
                w_ready = dut.w.ready
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload, w_took = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload, w_ready)
            if weights is not None and w_send and w_took:
                kw += 1
            if send and i_ready:
                k += 1
            if ready and o_valid:
                got.append(o_payload)
                if len(got) == expected_count:
                    state["cycles"] = t + 1
                    return
        raise AssertionError(f"only {len(got)} of {expected_count} output beats after "
                             f"{max_cycles} cycles ({k} of {len(beats)} input beats taken)")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got, state["cycles"]


def reference_tensors(export, x, name="stage1.conv1"):
    """Every intermediate of the block for input ``x [Cin, H, W]`` from the integer reference,
    channels first: ``act_bits``, ``count``, ``conv_out``, ``shortcut``, ``sum``, ``output``."""
    layer = next(m for m in export["meta"]["layers"] if m["name"] == name)
    b = _Binary(layer, export, np.int64)
    keep = {}
    b.run(np.moveaxis(np.asarray(x, np.int64), 0, -1)[None], DEFAULT_FORMAT, keep)
    return {k[len(name) + 1:]: v[0] for k, v in keep.items()}


def window_bits(act_bits, pad_bit, stride, oy, ox):
    """The ``9*Cin`` window bits of output pixel ``(oy, ox)`` (tap-major, channel-minor, the
    pad bit outside the map) of ``act_bits [Cin, H, W]``."""
    cin, h, w = act_bits.shape
    out = []
    for ky in range(3):
        for kx in range(3):
            y, x = oy * stride + ky - 1, ox * stride + kx - 1
            inside = 0 <= y < h and 0 <= x < w
            out.extend(act_bits[:, y, x].tolist() if inside else [pad_bit] * cin)
    return out


def to_int(bits):
    """Bits (bit 0 first) -> int."""
    return sum(int(b) << i for i, b in enumerate(bits))


def pack(values, bits):
    """Signed lane values -> one int, lane ``p`` at bits ``[p*bits, (p+1)*bits)``."""
    return sum((int(v) & ((1 << bits) - 1)) << (p * bits) for p, v in enumerate(values))


def unpack(word, bits, lanes, signed=True):
    """Inverse of :func:`pack`."""
    vals = [(int(word) >> (p * bits)) & ((1 << bits) - 1) for p in range(lanes)]
    return [v - (1 << bits) if signed and v >> (bits - 1) else v for v in vals]


def run_cycles(dut, inputs, outputs, extra=0):
    """Drive ``inputs[t]`` (a dict port -> int, set before edge ``t``) for every cycle and
    return ``[{port: int}]`` of ``outputs`` sampled after each edge (``extra`` more idle cycles;
    ports are paths like ``"fold"`` or ``"w.en"``; every value is the port's raw bits)."""
    from amaranth.hdl import Value

    def port(path):
        obj = dut
        for part in path.split("."):
            obj = getattr(obj, part)
        return Value.cast(obj)

    got = []

    async def tb(ctx):
        for t in range(len(inputs) + extra):
            for k, v in (inputs[t] if t < len(inputs) else {}).items():
                ctx.set(port(k), v)
            await ctx.tick()
            got.append({o: ctx.get(port(o)) for o in outputs})

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got
