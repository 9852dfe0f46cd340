"""Images per second of the integer reference (bit-packed popcount, numpy) vs PyTorch float eval.

Both run the same network on the same images in the same process, one after the other, several
times; the medians are reported, once with one thread (numpy's BLAS and torch both limited to
one thread, set before either is imported: each setting runs in its own child process) and once
with the default thread count. The network is a calibrated random network
(``bincount.model.nets.calibrate``) unless ``--checkpoint`` is given; its speed does not depend on
training. The result replaces the "Integer reference vs PyTorch" section of
docs/benchmarks.md (other sections are left as they are; the file is written atomically).

    python bench/reference_speed.py [--network reactnet18] [--variant qat_cn_times_alpha]
        [--width-mult 1.0] [--images 64] [--repeats 5] [--output docs/benchmarks.md]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench/reference_speed.py: begin -->"
END = "<!-- bench/reference_speed.py: end -->"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="reactnet18")
    p.add_argument("--variant", default="qat_cn_times_alpha")
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--shortcut", default="real")
    p.add_argument("--slopes", default="trained")
    p.add_argument("--checkpoint", default=None, help="time this trained network instead")
    p.add_argument("--images", type=int, default=64, help="images per timed call (one batch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                   help="markdown file whose section is replaced ('-' prints only)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(args):
    """Time both implementations in this process; print one JSON line."""
    import numpy as np
    import torch

    from bincount.model.nets.calibrate import calibrated_network, synthetic_images
    from bincount.model.export.network_export import export_arrays
    from bincount.model.training.train import load_model
    from bincount.model.export.network_reference import NetworkReference

    if args.child == "1":
        torch.set_num_threads(1)
    if args.checkpoint:
        model = load_model(args.checkpoint)
    else:
        model, _ = calibrated_network(args.network, args.variant, args.width_mult,
                                      seed=args.seed, count=16, shortcut=args.shortcut,
                                      slopes=args.slopes)
    model.eval()
    export = export_arrays(model)
    ref = NetworkReference(export)
    x = synthetic_images(args.images, args.seed + 1)
    xn = x.numpy()

    def timed(fn):
        fn()                                               # warm-up (allocations, caches)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), times

    with torch.no_grad():
        t_ref, all_ref = timed(lambda: ref.run(xn))
        t_torch, all_torch = timed(lambda: model(x))
        t_fixed, _ = timed(lambda: model.forward_fixed(x, export))
    same = bool(np.array_equal(ref.run(xn), model.forward_fixed(x, export).numpy()))
    print(json.dumps({"threads": torch.get_num_threads(), "images": args.images,
                      "reference_s": t_ref, "torch_s": t_torch, "torch_fixed_s": t_fixed,
                      "reference_runs": all_ref, "torch_runs": all_torch,
                      "reference_equals_torch_fixed": same}))


def run_child(args, mode):
    env = dict(os.environ)
    if mode == "1":
        env.update({v: "1" for v in THREAD_VARS})
    else:
        for v in THREAD_VARS:
            env.pop(v, None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
           "--network", args.network, "--variant", args.variant,
           "--width-mult", str(args.width_mult), "--shortcut", args.shortcut,
           "--slopes", args.slopes, "--images", str(args.images), "--repeats", str(args.repeats),
           "--seed", str(args.seed)] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"reference_speed: child ({mode} threads) failed:\n{r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def section(args, results, started, wall):
    what = (f"checkpoint `{Path(args.checkpoint).name}`" if args.checkpoint else
            f"calibrated random network (seed {args.seed})")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [BEGIN, "## Integer reference vs PyTorch (CPU)", "",
             f"`python bench/reference_speed.py` ({started}, {wall:.0f} s): {args.network} "
             f"`{args.variant}`, width {args.width_mult:g}, shortcut `{args.shortcut}`, "
             f"slopes `{args.slopes}`, {what}; {args.images} synthetic 32x32 images per call "
             f"(one batch), median of {args.repeats} runs after one warm-up. "
             f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"
             + (f", load average {load[0]:.1f} at the end (the machine is shared: absolute "
                f"numbers vary, the ratio in one run is the comparison)" if load else "") + ".",
             "",
             "| threads | integer reference (numpy, bit-packed popcount) img/s | PyTorch float eval "
             "img/s | reference / PyTorch | torch fixed-point mode img/s |",
             "| --- | --- | --- | --- | --- |"]
    for mode, r in results:
        n = r["images"]
        ref, tor, fix = n / r["reference_s"], n / r["torch_s"], n / r["torch_fixed_s"]
        label = "1" if mode == "1" else f"default ({r['threads']})"
        lines.append(f"| {label} | {ref:.1f} | {tor:.1f} | {ref / tor:.2f}x | {fix:.1f} |")
    ok = all(r["reference_equals_torch_fixed"] for _, r in results)
    lines += ["", "The integer reference's logits were "
              + ("identical to" if ok else "**different from**")
              + " the torch fixed-point mode's (`model.forward_fixed`) on the timed images. "
              "The reference packs 64 channels per word and counts `N - popcount(act ^ wgt)` "
              "with `np.bitwise_count`; the real convs (stem, 1x1 shortcut, FC) are exact "
              "float64 GEMMs of integers; the rest is int32/int64 elementwise work.", END]
    return "\n".join(lines) + "\n"


def write_section(path, text):
    from bincount.fileio import replace_marked_section

    replace_marked_section(path, BEGIN, END, text)


def main(argv=None):
    args = parse(argv)
    if args.child:
        return child(args)
    started = time.strftime("%Y-%m-%d")
    t0 = time.time()
    results = [(mode, run_child(args, mode)) for mode in ("1", "default")]
    text = section(args, results, started, time.time() - t0)
    print(text)
    if args.output != "-":
        write_section(args.output, text)
        print(f"wrote section to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
