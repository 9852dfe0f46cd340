"""Training images per second on the CPU: the fused training path against the reference path.

Both paths train the same network (same initial weights, each its own copy and Adam) on the
same synthetic CIFAR-sized images, fed through the training iterator (``Batches``: shuffle,
crop, flip, normalise), in one process. Each measurement is a full training step (forward,
cross-entropy, backward, Adam update, loss and accuracy read back), as ``bincount train``
does it:

* **reference**: the loop body of ``train.train`` before the fused path, with
  ``bincount.model.layers.fastpath.reference_path()`` (the layers' plain tensor expressions), the
  default (NCHW) memory format and torch's default (per-parameter) Adam;
* **fused**: ``train.train_step`` on the fused path, the multi-tensor Adam, the default
  memory format (what ``bincount train`` does; ``--channels-last`` adds a path with
  model and images in ``channels_last``, which changes BN's float rounding);
* **compiled**: the fused path with the network through ``torch.compile`` (what ``bincount
  train --compile`` does; its warm-up step compiles, which is timed apart; ``--no-compile``
  leaves it out). One step from the same weights and batch is also run on the fused and the
  compiled path and their logits and gradients compared (the largest difference relative to
  the tensor's largest magnitude).

The two alternate (reference, fused, then fused, reference, ...) for ``--rounds`` rounds after
one warm-up step each, so that the load of a shared machine falls on both alike; the table gives
the median images/s of each and the ratio of the medians. One configuration is also profiled
(``torch.profiler``, two steps per path) to show where the time goes. The result replaces the
"Training speed" section of docs/benchmarks.md.

    python bench/train_speed.py [--variants qat_cn_times_alpha baseline] [--width-mult 0.25]
        [--batch-sizes 64 256] [--threads 1 2] [--rounds 5] [--output docs/benchmarks.md]
"""

import argparse
import copy
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench/train_speed.py: begin -->"
END = "<!-- bench/train_speed.py: end -->"
CONV_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
            "aten::thnn_conv2d", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="reactnet18")
    p.add_argument("--variants", nargs="+", default=["qat_cn_times_alpha", "baseline"])
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--flag", action="append", metavar="KEY=VALUE",
                   help="network flag (default: shortcut=concat slopes=pow2 fixed_point=true)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=2048, help="synthetic training images")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--channels-last", action="store_true",
                   help="also time the fused path with model and images in channels_last")
    p.add_argument("--no-compile", action="store_true", help="leave out the compiled path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                   help="markdown file whose section is replaced ('-' prints only)")
    return p.parse_args(argv)


def _flags(args):
    from bincount.model.cli.train_cli import parse_flags

    return parse_flags(args.flag or ["shortcut=concat", "slopes=pow2", "fixed_point=true"])


class Path_:
    """One training path: a model copy, its Adam, its batch iterator, its step."""

    def __init__(self, name, base, images, labels, batch, fused, seed, compiled=False):
        from bincount.model.data.batches import Batches
        from bincount.model.training.train import make_optimizer

        self.name, self.fused = name, fused
        fmt = torch.channels_last if fused == "cl" else torch.contiguous_format
        self.model = copy.deepcopy(base).to(memory_format=fmt).train()
        self.opt = make_optimizer(self.model, 1e-3, 5e-6, foreach=True if fused else None)
        self.batches = Batches(images, labels, batch, augment=True, seed=seed,
                               memory_format=fmt)
        self.epoch, self.it = 0, iter(())
        self.step_model = torch.compile(self.model) if compiled else self.model

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.epoch += 1
            self.it = iter(self.batches.epoch(self.epoch))
            return next(self.it)

    def step(self):
        from bincount.model.layers import fastpath
        from bincount.model.training.train import train_step

        x, y = self._next()
        if self.fused:
            logits, loss = train_step(self.step_model, self.opt, x, y, 1e-3)
        else:
            with fastpath.reference_path():        # the loop body as it was
                for g in self.opt.param_groups:
                    g["lr"] = 1e-3
                logits = self.model(x)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(float(loss))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
        loss.item()
        int((logits.detach().argmax(dim=1) == y).sum())
        return len(y)


def measure(args, variant, batch, threads, images, labels):
    from bincount.model.training.train import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    base = build_model(args.network, variant, args.width_mult, _flags(args))
    paths = [Path_("reference", base, images, labels, batch, False, args.seed),
             Path_("fused", base, images, labels, batch, True, args.seed)]
    if args.channels_last:
        paths.append(Path_("fused_cl", base, images, labels, batch, "cl", args.seed))
    if not args.no_compile:
        paths.append(Path_("compiled", base, images, labels, batch, True, args.seed, True))
    warm = {}
    for p in paths:
        t0 = time.perf_counter()
        p.step()                                            # warm-up (compiles)
        warm[p.name] = time.perf_counter() - t0
    rates = {p.name: [] for p in paths}
    for r in range(args.rounds):
        for p in (paths if r % 2 == 0 else paths[::-1]):
            t0 = time.perf_counter()
            n = p.step()
            rates[p.name].append(n / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"variant": variant, "batch": batch, "threads": threads, **med,
            "ratio": med["fused"] / med["reference"], "runs": rates, "warm_s": warm}


def agreement(args, variant, images, labels):
    """The fused and the compiled path after one forward and backward from the same weights and
    batch: the logits' and the loss's largest difference (relative to the fused logits' largest
    magnitude), and the share of gradient elements that differ by more than 1e-3 of their
    tensor's largest magnitude (a float rounding difference that flips one binary activation
    changes the gradients downstream of it)."""
    from bincount.model.data.batches import Batches
    from bincount.model.training.train import build_model

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    base = build_model(args.network, variant, args.width_mult, _flags(args)).train()
    x, y = next(iter(Batches(images, labels, 64, augment=True, seed=args.seed).epoch(0)))
    cl = torch.channels_last
    out = {}
    for name, model, xx in (
            ("fused", copy.deepcopy(base), x),
            ("compiled", torch.compile(copy.deepcopy(base)), x),
            ("channels_last", copy.deepcopy(base).to(memory_format=cl), x.contiguous(
                memory_format=cl))):
        logits = model(xx)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        out[name] = (logits.detach(), float(loss),
                     [p.grad.detach().clone() for p in model.parameters() if p.grad is not None])
    la, sa, ga = out["fused"]
    res = {"variant": variant, "tensors": len(ga)}
    for name in ("compiled", "channels_last"):
        lb, sb, gb = out[name]
        assert len(ga) == len(gb)
        off = sum(int(((a - b).abs() > 1e-3 * a.abs().max()).sum()) for a, b in zip(ga, gb))
        res[name] = {"logits": float((la - lb).abs().max() / la.abs().max()),
                     "loss": abs(sa - sb), "grad_off": off / sum(a.numel() for a in ga)}
    return res


def profile(args, variant, images, labels):
    """Share of self CPU time per op over two steps of each path (batch 64, one thread)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    from bincount.model.training.train import build_model

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    base = build_model(args.network, variant, args.width_mult, _flags(args))
    out = {}
    for fused in (False, True):
        p = Path_("x", base, images, labels, 64, fused, args.seed)
        p.step()
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            p.step()
            p.step()
        ops = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
        total = sum(t for _, t in ops)
        conv = sum(t for k, t in ops if k in CONV_OPS)
        top = sorted(((k, t) for k, t in ops if k not in CONV_OPS), key=lambda kt: -kt[1])[:4]
        out["fused" if fused else "reference"] = {
            "step_s": total / 2e6, "conv": conv / total,
            "top": [(k, t / total) for k, t in top]}
    return out


def _commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def section(args, rows, prof, started, wall, agree=()):
    flags = " ".join(f"--flag {k}={str(v).lower()}" for k, v in _flags(args).items())
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [BEGIN, "## Training speed (CPU)", "",
             f"`python bench/train_speed.py` ({started}, commit {_commit()}, {wall:.0f} s): "
             f"{args.network} at width {args.width_mult:g}, {flags}; {args.images} synthetic "
             f"images through the training iterator (crop, flip, normalise); a step is forward, "
             f"loss, backward and the Adam update. The paths alternate in one "
             f"process, {args.rounds} timed steps each after one warm-up; medians. "
             f"torch {torch.__version__.split('+')[0]}, CPU: "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"
             + (f", load average {load[0]:.1f} at the end (the machine is shared: absolute "
                f"numbers vary, the ratio in one run is the comparison)" if load else "") + ".",
             "",
             "| variant | batch | threads | reference img/s | fused img/s | speed-up |"
             + (" fused + channels_last img/s | speed-up |" if args.channels_last else "")
             + ("" if args.no_compile else
                " compiled img/s | speed-up | compile (warm-up step) |"),
             "| --- | ---: | ---: | ---: | ---: | ---: |"
             + (" ---: | ---: |" if args.channels_last else "")
             + ("" if args.no_compile else " ---: | ---: | ---: |")]
    for r in rows:
        lines.append(f"| `{r['variant']}` | {r['batch']} | {r['threads']} | "
                     f"{r['reference']:.1f} | {r['fused']:.1f} | {r['ratio']:.2f}x |"
                     + (f" {r['fused_cl']:.1f} | {r['fused_cl'] / r['reference']:.2f}x |"
                        if args.channels_last else "")
                     + ("" if args.no_compile else
                        f" {r['compiled']:.1f} | **{r['compiled'] / r['reference']:.2f}x** | "
                        f"{r['warm_s']['compiled']:.0f} s |"))
    if prof:
        lines += ["", f"Where the time goes (`{args.variants[0]}`, batch 64, one thread, "
                      f"`torch.profiler`, self CPU time of two steps):", ""]
        for name in ("reference", "fused"):
            p = prof[name]
            top = ", ".join(f"`{k}` {100 * v:.0f} %" for k, v in p["top"])
            lines.append(f"- {name}: {p['step_s']:.2f} s per step; convolutions (forward and "
                         f"backward) {100 * p['conv']:.0f} %; then {top}.")
    lines += ["", "The fused path gives the same forward values and BN statistics and the same "
              "gradients up to float rounding (`tests/test_fastpath.py`); channels_last "
              "changes the order of BN's sums, so its results equal the others' up to float "
              "rounding only (not used by `bincount train`)."]
    for a in agree:
        c, k = a["compiled"], a["channels_last"]
        lines += ["", f"Compiled and channels_last against fused, one forward and backward of "
                      f"`{a['variant']}` from the same weights and batch (64 images): the "
                      f"logits differ by at most {c['logits']:.1e} (compiled) and "
                      f"{k['logits']:.1e} (channels_last) of their largest magnitude, the loss "
                      f"by {c['loss']:.1e} and {k['loss']:.1e}; {100 * c['grad_off']:.2f} % "
                      f"and {100 * k['grad_off']:.2f} % of the gradient elements "
                      f"({a['tensors']} tensors) differ by more than 1e-3 of their tensor's "
                      f"largest magnitude (a rounding difference that flips one binary "
                      f"activation changes the gradients that depend on it)."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse(argv)
    started = time.strftime("%Y-%m-%d")
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    rows = []
    for variant in args.variants:
        for batch in args.batch_sizes:
            for threads in args.threads:
                r = measure(args, variant, batch, threads, images, labels)
                rows.append(r)
                print(f"{variant} batch {batch} threads {threads}: reference "
                      f"{r['reference']:.1f} img/s, fused {r['fused']:.1f} img/s, "
                      f"{r['ratio']:.2f}x"
                      + ("" if args.no_compile else
                         f", compiled {r['compiled']:.1f} img/s, "
                         f"{r['compiled'] / r['reference']:.2f}x"), flush=True)
    prof = None if args.no_profile else profile(args, args.variants[0], images, labels)
    agree = [] if args.no_compile else [agreement(args, v, images, labels)
                                         for v in args.variants]
    text = section(args, rows, prof, started, time.time() - t0, agree)
    print(text)
    if args.output != "-":
        from bincount.fileio import replace_marked_section

        replace_marked_section(args.output, BEGIN, END, text)
        print(f"wrote section to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
