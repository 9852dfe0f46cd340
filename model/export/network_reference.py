"""Torch-free integer reference of a whole exported network, golden vectors, agreement.

``run_reference(export, images)`` runs full inference from a ``bincount-network`` export (a path
or the dict of :func:`bincount.model.export.network_file.load_export`) with numpy integer arithmetic:
binary layers as bit-packed XNOR-popcounts (channels packed into 64-bit words, ``np.bitwise_count``),
everything else in ``int64`` exactly as docs/conventions.md "Whole network" says. With
``tensors=True`` it also returns every layer's tensors (see :data:`TENSOR_DOC`); ``golden``
writes those for chosen images to a ``bincount-golden`` ``.npz`` for the hardware testbenches.

``agreement(model, export, images)`` is the fraction of images whose top-1 class is the same for
the float model and the integer reference.
"""

import json

import numpy as np

from bincount.errors import BincountError
from bincount.fileio import atomic_savez, load_npz
from bincount.model.export.bits import unpack_bits
from bincount.model.export.fixed_point import int_range, round_half_up
from bincount.model.export.net_format import NetFormat
from bincount.model.export.network_file import export_meta, load_export, validate_export

__all__ = ["NetworkReference", "run_reference", "quantize_input", "golden", "load_golden",
           "agreement", "TENSOR_DOC", "GOLDEN_FORMAT", "GOLDEN_VERSION"]

GOLDEN_FORMAT = "bincount-golden"
GOLDEN_VERSION = 1

#: Name pattern -> (format, meaning) of every tensor ``tensors=True`` returns (leading batch axis).
TENSOR_DOC = {
    "input": ("in", "quantised normalised input image [3, 32, 32]"),
    "stem.acc": ("int", "stem accumulator: sum of weight * input over 3x3x3 (zero padding)"),
    "stem.output": ("res", "stem output = residual stream entering the first block"),
    "{L}.input": ("res", "residual stream entering binary layer L [Cin, H, W]"),
    "{L}.act_bits": ("bit", "binary input of L, 1 = +1: (input + rsign_bias >= 0) for ReActNet, "
                            "(input >= 0) for Bi-Real [Cin, H, W], before padding"),
    "{L}.count": ("int", "XNOR-popcount of L, 0..N [Cout, Ho, Wo]"),
    "{L}.conv_out": ("res", "binary conv + BN of L: hi/lo by threshold (binarized) or "
                            "sat((M*(2*count-N)+O)>>S) (baseline) [Cout, Ho, Wo]"),
    "{L}.shortcut": ("res", "shortcut of L: input, or its downsample [Cout, Ho, Wo]"),
    "{L}.sum": ("res", "sat(conv_out + shortcut)"),
    "{L}.output": ("res", "residual stream leaving L: RPReLU(sum) for ReActNet, sum for Bi-Real"),
    "head.pool_sum": ("int", "sum over the last map's pixels of the residual stream [C]"),
    "head.acc": ("int", "FC accumulator: head.weight @ pool_sum [classes]"),
    "logits": ("logit", "sat((M*acc + O) >> S) [classes]"),
}


def _sat(v, bits, out=None):
    lo, hi = int_range(bits)
    return np.clip(v, lo, hi, out=out)


def _requant(acc, mul, off, shift, bits, dtype=np.int64):
    """``sat((M*acc + O) >> S)`` with ``int64`` arithmetic; channels on the last axis."""
    y = (mul * acc.astype(np.int64, copy=False) + off) >> int(shift)
    return _sat(y, bits).astype(dtype, copy=False)


def _int_matmul(x, w):
    """``sum_c x[..., c] * w[o, c]`` of integers -> ``int64 [..., O]``, exact: one float64 GEMM
    whose partial sums are integers below 2**53 (the export checks the accumulator bound)."""
    xf = x.reshape(-1, x.shape[-1]).astype(np.float64)
    acc = np.rint(xf @ w.astype(np.float64).T).astype(np.int64)
    return acc.reshape(x.shape[:-1] + (w.shape[0],))


def _shift_round(t, e):
    """``t * 2**e`` rounded half up (arithmetic shifts), elementwise exponents ``e``."""
    r = np.maximum(-e, 0)
    left = t << np.maximum(e, 0)
    bias = np.where(r > 0, np.left_shift(1, np.maximum(r - 1, 0)), 0).astype(t.dtype)
    return np.where(e >= 0, left, (t + bias) >> r.astype(t.dtype))


def quantize_input(images, export):
    """The integer input ``int64 [B, 3, 32, 32]`` of ``images``.

    ``images``: normalised float images ``[B, 3, 32, 32]`` (as fed to the float model;
    quantised as ``sat(round_half_up(x * 2**in_frac), in_bits)``), ``uint8`` pixels
    ``[B, 32, 32, 3]`` (through ``input_lut``), or integer arrays already in the input
    format ``[B, 3, 32, 32]`` (``int64``, checked against the range).
    """
    meta = export_meta(export)
    fmt = NetFormat.from_dict(meta["formats"])
    if hasattr(images, "detach"):                       # a torch tensor
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.dtype == np.uint8:
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise BincountError(f"uint8 images have shape {x.shape}; expected [B, 32, 32, 3]")
        lut = np.asarray(export["input_lut"])
        return np.ascontiguousarray(np.stack([lut[c][x[..., c]] for c in range(3)], axis=1))
    if x.ndim != 4 or x.shape[1:] != (3, 32, 32):
        raise BincountError(f"images have shape {x.shape}; expected [B, 3, 32, 32] (normalised) "
                            f"or uint8 [B, 32, 32, 3]")
    if x.dtype.kind in "iu":
        lo, hi = int_range(fmt.in_bits)
        if x.size and (x.min() < lo or x.max() > hi):
            raise BincountError(f"integer input outside the {fmt.in_bits}-bit input format")
        return x.astype(np.int64)
    if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
        raise BincountError("images must be finite floats, uint8 pixels or integers")
    return _sat(round_half_up(x.astype(np.float64) * 2.0 ** fmt.in_frac), fmt.in_bits)


def _pack_channels(bits, words):
    """0/1 ``[..., C]`` -> ``uint64 [..., words]`` (channel c is bit c%64 of word c//64)."""
    c = bits.shape[-1]
    if c < 64 * words:
        pad = np.zeros(bits.shape[:-1] + (64 * words - c,), dtype=np.uint8)
        bits = np.concatenate([bits, pad], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")          # [..., 8 * words] bytes
    return np.ascontiguousarray(packed).view("<u8")


def _nchw(a, dtype=np.int64):
    """An internal channels-last tensor as the documented ``[B, C, H, W]`` (copy)."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1)).astype(dtype, copy=False)


class _Binary:
    """One binary layer prepared for the word-parallel popcount (tensors are channels-last)."""

    def __init__(self, layer, export, dtype):
        self.meta = layer
        self.dt = dtype
        p = layer["name"] + "."
        k, cin, n = layer["k"], layer["cin"], layer["n"]
        self.words = (cin + 63) // 64
        w = unpack_bits(export[p + "weight_bits"], n).reshape(-1, k * k, cin)
        self.wq = _pack_channels(w, self.words).reshape(w.shape[0], -1)   # [Cout, kk*words]

        def get(key, dt=dtype):
            return np.asarray(export[p + key]).astype(dt)

        self.rsign = get("rsign_bias") if layer["rsign"] else None
        if layer["form"] == "binarized":
            self.t, self.hi, self.lo = get("threshold"), get("hi"), get("lo")
        else:
            self.mul, self.off = get("mul", np.int64), get("offset", np.int64)
            self.shift = int(export[p + "shift"])
        if layer["downsample"] == "real":
            self.dw = np.asarray(export[p + "down.weight"])
            self.dmul, self.doff = get("down.mul", np.int64), get("down.offset", np.int64)
            self.dshift = int(export[p + "down.shift"])
        self.index = [c % cin for c in range(layer["cout"])]
        if layer["rprelu"] is not None:
            self.b0, self.b1 = get("rprelu.bias0"), get("rprelu.bias1")
            if layer["rprelu"] == "trained":
                self.slope = get("rprelu.slope")
            else:
                self.sexp = get("rprelu.slope_exp")
                self.sneg = get("rprelu.slope_neg") == 1

    def counts(self, bits):
        """XNOR-popcounts ``[B, Ho, Wo, Cout]`` of input bits ``uint8 [B, H, W, Cin]``.

        ``count = N - popcount(act ^ wgt)`` over 64-bit words of channels; the words hold 0
        beyond ``Cin`` in both operands, so their XOR adds nothing there.
        """
        m = self.meta
        k, s, n, p = m["k"], m["stride"], m["n"], m["k"] // 2
        b = bits.shape[0]
        ho = wo = m["out_size"]
        padded = np.pad(bits, ((0, 0), (p, p), (p, p), (0, 0)),
                        constant_values=np.uint8(m["pad_bit"]))
        act = _pack_channels(padded, self.words)                       # [B, Hp, Wp, words]
        cols = np.concatenate([act[:, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]
                               for ky in range(k) for kx in range(k)], axis=-1)
        cols = np.ascontiguousarray(cols.reshape(b * ho * wo, -1))     # [P, kk*words]
        wq = self.wq                                                   # [Cout, kk*words]
        cout, nw = wq.shape
        rows = max(1, (1 << 16) // cout)                               # cache-sized chunks
        out = np.empty((cols.shape[0], cout), dtype=self.dt)
        xbuf = np.empty((rows, cout), dtype=np.uint64)
        cbuf = np.empty((rows, cout), dtype=np.uint8)
        diff = np.empty((rows, cout), dtype=np.uint16)
        for i in range(0, cols.shape[0], rows):
            c = cols[i:i + rows]
            r = c.shape[0]
            x, cnt, d = xbuf[:r], cbuf[:r], diff[:r]
            d.fill(0)
            for j in range(nw):
                np.bitwise_xor(c[:, j, None], wq[None, :, j], out=x)
                np.bitwise_count(x, out=cnt)
                np.add(d, cnt, out=d)
            np.subtract(n, d, out=out[i:i + r], casting="unsafe")
        return out.reshape(b, ho, wo, cout)

    def run(self, x, fmt, keep):
        """One block on the channels-last residual stream ``x [B, H, W, Cin]``."""
        m = self.meta
        name = m["name"]
        rb = fmt.res_bits
        if self.rsign is not None:
            bits = (x + self.rsign >= 0).view(np.uint8)
        else:
            bits = (x >= 0).view(np.uint8)
        count = self.counts(bits)
        if m["form"] == "binarized":
            y = np.where(count >= self.t, self.hi, self.lo)
        else:
            y = _requant(2 * count - m["n"], self.mul, self.off, self.shift, rb, self.dt)
        ds = m["downsample"]
        if ds is None:
            sc = x
        else:
            xs = x
            if m["stride"] == 2:
                xs = x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]
            if ds == "real":
                sc = _requant(_int_matmul(xs, self.dw), self.dmul, self.doff, self.dshift, rb,
                              self.dt)
            else:
                if m["stride"] == 2:
                    xs = (xs + 2) >> 2
                sc = xs[..., self.index]
        s = _sat(y + sc, rb)
        out = s
        if m["rprelu"] is not None:
            t = _sat(s + self.b0, rb)
            if m["rprelu"] == "trained":
                sf = fmt.slope_frac
                neg = (t * self.slope + (1 << (sf - 1))) >> sf
            else:
                v = _shift_round(t, self.sexp)
                neg = np.where(self.sneg, -v, v)
            out = np.where(t >= 0, t, neg)
            out += self.b1
            _sat(out, rb, out=out)
        if keep is not None:
            keep.update({f"{name}.input": _nchw(x), f"{name}.act_bits": _nchw(bits, np.uint8),
                         f"{name}.count": _nchw(count), f"{name}.conv_out": _nchw(y),
                         f"{name}.shortcut": _nchw(sc), f"{name}.sum": _nchw(s),
                         f"{name}.output": _nchw(out)})
        return out


class NetworkReference:
    """An export prepared for repeated inference (weights packed once).

    Internally tensors are channels-last and ``int32`` where the formats allow it (residual
    and slope widths up to 16 bits); every product that can exceed 31 bits is ``int64``.
    The tensors it returns are ``[B, C, H, W]`` ``int64`` (bits ``uint8``).
    """

    def __init__(self, export):
        if not isinstance(export, dict):
            export = load_export(export)
        elif "meta" not in export:
            export = validate_export(dict(export))
        self.export = export
        self.meta = export_meta(export)
        self.fmt = fmt = NetFormat.from_dict(self.meta["formats"])
        narrow = fmt.res_bits + max(fmt.slope_bits, 4) <= 31 and fmt.res_bits <= 24
        self.dtype = np.int32 if narrow else np.int64
        e = export
        self.stem_w = np.asarray(e["stem.weight"])
        self.stem_c = (np.asarray(e["stem.mul"]), np.asarray(e["stem.offset"]), int(e["stem.shift"]))
        self.layers = [_Binary(layer, e, self.dtype) for layer in self.meta["layers"]]
        self.head_w = np.asarray(e["head.weight"])
        self.head_c = (np.asarray(e["head.mul"]), np.asarray(e["head.offset"]), int(e["head.shift"]))

    def stem(self, x):
        """Stem accumulator ``int64 [B, 32, 32, C0]`` (3x3, zero padding; ``x`` is NCHW)."""
        cout, cin, k, _ = self.stem_w.shape
        p = k // 2
        b, _, h, w = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        cols = np.stack([xp[:, :, ky:ky + h, kx:kx + w] for ky in range(k) for kx in range(k)],
                        axis=-1)                                      # [B, Cin, H, W, kk]
        cols = cols.transpose(0, 2, 3, 1, 4).reshape(b, h, w, cin * k * k)
        return _int_matmul(cols, self.stem_w.reshape(cout, -1))

    def run(self, images, tensors=False):
        """Integer logits ``int64 [B, classes]`` (and the tensor dict if ``tensors``)."""
        fmt = self.fmt
        x = quantize_input(images, self.export)
        keep = {"input": x} if tensors else None
        acc = self.stem(x)
        r = _requant(acc, *self.stem_c, fmt.res_bits, self.dtype)
        if keep is not None:
            keep.update({"stem.acc": _nchw(acc), "stem.output": _nchw(r)})
        for layer in self.layers:
            r = layer.run(r, fmt, keep)
        pool = r.sum(axis=(1, 2), dtype=np.int64)
        hacc = _int_matmul(pool, self.head_w)
        logits = _requant(hacc, *self.head_c, fmt.logit_bits)
        if keep is not None:
            keep.update({"head.pool_sum": pool, "head.acc": hacc, "logits": logits})
            return logits, keep
        return logits

    def predict(self, images, batch=100):
        """Top-1 classes ``int64 [B]`` (ties: the lowest class index)."""
        n = len(images)
        out = [np.argmax(self.run(images[i:i + batch]), axis=1) for i in range(0, n, batch)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def run_reference(export, images, tensors=False):
    """Integer inference of ``images`` with ``export`` (path or dict); see :class:`NetworkReference`."""
    ref = export if isinstance(export, NetworkReference) else NetworkReference(export)
    return ref.run(images, tensors)


def _tensor_doc(name, fmt, layers=()):
    key = name
    head, _, tail = name.rpartition(".")
    if head in layers:
        key = "{L}." + tail
    kind, text = TENSOR_DOC[key]
    widths = {"in": (fmt.in_bits, fmt.in_frac), "res": (fmt.res_bits, fmt.res_frac),
              "logit": (fmt.logit_bits, fmt.logit_frac), "bit": (1, 0), "int": (64, 0)}[kind]
    return {"format": kind, "bits": widths[0], "frac": widths[1], "meaning": text}


def golden(export, images, path=None, indices=None, labels=None, source=None):
    """Per-layer golden vectors of ``images`` (``[B, ...]``, see :func:`quantize_input`).

    Returns (and writes atomically to ``path`` if given) a ``bincount-golden`` dict: every
    tensor of :data:`TENSOR_DOC` under its name (leading axis = image), ``act_bits`` as
    ``uint8``, everything else ``int64``, plus ``meta_json`` (the export's metadata, each
    tensor's format and meaning, image indices and labels).
    """
    ref = export if isinstance(export, NetworkReference) else NetworkReference(export)
    logits, t = ref.run(images, tensors=True)
    b = logits.shape[0]
    arrays = {k: (v.astype(np.uint8) if k.endswith("act_bits") else v.astype(np.int64))
              for k, v in t.items()}
    arrays["prediction"] = np.argmax(logits, axis=1).astype(np.int64)
    names = {layer.meta["name"] for layer in ref.layers}
    idx = list(range(b)) if indices is None else [int(i) for i in indices]
    if len(idx) != b:
        raise BincountError(f"{len(idx)} image indices for {b} images")
    meta = {"format": GOLDEN_FORMAT, "version": GOLDEN_VERSION, "images": b,
            "image_indices": idx,
            "labels": None if labels is None else [int(v) for v in labels],
            "network": ref.meta["network"], "variant": ref.meta["variant"],
            "layers": [layer.meta["name"] for layer in ref.layers],
            "export_meta": ref.meta, "source": source or {},
            "tensors": {k: dict(_tensor_doc(k, ref.fmt, names), shape=list(v.shape[1:]))
                        for k, v in t.items()}}
    meta["tensors"]["prediction"] = {"format": "int", "bits": 64, "frac": 0, "shape": [],
                                     "meaning": "argmax of logits (lowest index on ties)"}
    arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    if path is not None:
        atomic_savez(path, **arrays)
    return arrays


def load_golden(path):
    """Read a ``bincount-golden`` ``.npz``: its arrays plus the parsed ``"meta"``."""
    data = load_npz(path, required=("meta_json", "input", "logits"))
    try:
        meta = json.loads(str(np.asarray(data["meta_json"])[()]))
    except ValueError as exc:
        raise BincountError(f"file {str(path)!r}: meta_json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != GOLDEN_FORMAT \
            or meta.get("version") != GOLDEN_VERSION:
        raise BincountError(f"file {str(path)!r} is not a {GOLDEN_FORMAT} version "
                            f"{GOLDEN_VERSION} file")
    missing = sorted(set(meta.get("tensors", {})) - set(data))
    if missing:
        raise BincountError(f"file {str(path)!r} lacks tensors {missing[:4]}")
    data["meta"] = meta
    return data


def agreement(model, export, images, batch=200, return_predictions=False):
    """Fraction of ``images`` whose top-1 class is the same for the float ``model`` (eval mode,
    float32) and the integer reference of ``export``.

    ``images``: normalised float images ``[B, 3, 32, 32]`` (numpy or torch). With
    ``return_predictions`` also returns both prediction arrays.
    """
    import torch

    ref = export if isinstance(export, NetworkReference) else NetworkReference(export)
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.ndim != 4 or x.shape[1:] != (3, 32, 32) or x.dtype.kind != "f":
        raise BincountError(f"agreement needs normalised float images [B, 3, 32, 32], "
                            f"got {x.dtype} {x.shape}")
    if len(x) == 0:
        raise BincountError("agreement needs at least one image")
    was_training = model.training
    model.eval()
    pf = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                pf.append(model(torch.as_tensor(x[i:i + batch], dtype=torch.float32))
                          .argmax(dim=1).numpy())
    finally:
        model.train(was_training)
    pf = np.concatenate(pf)
    pi = ref.predict(x, batch)
    frac = float(np.mean(pf == pi))
    return (frac, pf, pi) if return_predictions else frac
