"""Top-1 agreement of the float model and its integer reference on CIFAR-10 test images.

    python bench/agreement.py --checkpoint CKPT [--limit 10000]      # a trained network
    python bench/agreement.py --random [--network reactnet18] [--variant ...] [--width-mult 0.25]

For each network it reports the agreement of the plain float forward and of the ``fixed_point``
float forward (``model.set_fixed_point(True)``) with the integer reference of the same export,
the top-1 accuracy of the float model and of the integer reference, and, as a measure of how
chaotic the float network is, the agreement of the float model with itself on inputs perturbed by
Gaussian noise of standard deviation 1e-5 and 1e-3 (the integer input grid is 2**-8 = 3.9e-3).
``--random`` uses calibrated random networks (BN statistics from 256 test images). One JSON
line per network on stdout (``--json FILE`` also writes them).
"""

import argparse
import json
import sys
import time


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", default=[], help="trained checkpoint(s)")
    p.add_argument("--random", action="store_true", help="calibrated random networks")
    p.add_argument("--network", action="append", default=None)
    p.add_argument("--variant", action="append", default=None)
    p.add_argument("--shortcut", default="real")
    p.add_argument("--slopes", default="trained")
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=10000, help="test images (every 10000/limit-th)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the JSON lines to this file")
    return p.parse_args(argv)


def measure(model, x, y, label):
    import numpy as np
    import torch

    from bincount.model.export.network_export import export_arrays
    from bincount.model.export.network_reference import NetworkReference, agreement

    t0 = time.time()
    export = export_arrays(model)
    ref = NetworkReference(export)
    plain, pf, pi = agreement(model, ref, x, return_predictions=True)
    noise = {}
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for eps in (1e-5, 1e-3):
            px = model(x + eps * torch.randn(x.shape, generator=g)).argmax(1).numpy()
            noise[f"{eps:g}"] = float(np.mean(px == pf))
    was = model.config.get("fixed_point", False)
    model.set_fixed_point(True)
    try:
        fixed = agreement(model, ref, x)
    finally:
        model.set_fixed_point(was)
    return {"network": label, "images": int(len(x)), "agreement_plain": plain,
            "agreement_fixed_point": fixed, "float_top1": float(np.mean(pf == y)),
            "integer_top1": float(np.mean(pi == y)), "float_self_agreement_noise": noise,
            "seconds": round(time.time() - t0, 1)}


def main(argv=None):
    args = parse(argv)
    import numpy as np
    import torch

    from bincount.model.data import cifar
    from bincount.model.nets.calibrate import calibrate_random
    from bincount.model.training.train import load_model
    from bincount.model.nets.networks import build_network

    torch.set_num_threads(args.threads)
    images, labels = cifar.load_split("test", data_dir=args.data_dir)
    step = max(1, len(images) // max(1, args.limit))
    sel = np.arange(0, len(images), step)[:args.limit]
    x = torch.as_tensor(cifar.normalize(images[sel]))
    y = labels[sel]
    jobs = [(load_model(c), c) for c in args.checkpoint]
    if args.random:
        calib = torch.as_tensor(cifar.normalize(images[1::39][:256]))
        for name in args.network or ["reactnet18", "birealnet18"]:
            for variant in args.variant or ["baseline", "qat_cn_times_alpha"]:
                torch.manual_seed(args.seed)
                m = build_network(name, variant, args.width_mult, shortcut=args.shortcut,
                                  slopes=args.slopes)
                calibrate_random(m, calib, args.seed)
                jobs.append((m, f"random {name} {variant} w{args.width_mult:g} "
                                f"{args.shortcut}/{args.slopes} seed {args.seed}"))
    if not jobs:
        sys.exit("agreement: give --checkpoint CKPT and/or --random")
    lines = []
    for model, label in jobs:
        r = measure(model.eval(), x, y, str(label))
        lines.append(json.dumps(r))
        print(lines[-1], flush=True)
    if args.json:
        from bincount.fileio import atomic_write_text
        atomic_write_text(args.json, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
