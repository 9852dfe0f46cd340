"""Make the project's default network from a trained checkpoint, and measure it.

    python bench/default_network.py --checkpoint CKPT [--baseline BASE] [--ptq PTQ] [--threads 1]

1. Exports ``CKPT`` (a hardware-deployable ReActNet-18: concat shortcut, pow2 RPReLU slopes,
   QAT-binarized counting, ``fixed_point`` on) as integers to ``networks/<name>.npz``
   (atomic) and records its SHA-256 in ``networks/SHA256SUMS``.
2. On every test image of the whole CIFAR-10 test set: top-1 / top-5 of the float model as
   trained (``fixed_point`` on) and of the plain float forward (flag off), top-1 / top-5 of the
   integer reference of the export, and the agreement of the integer reference with both.
3. Optionally the same top-1 / top-5 for the checkpoints of the seed's comparison
   (``--baseline``, ``--ptq``, ``--simple-qat``), evaluated the same way.

Writes its section of ``networks/README.md`` (the model card) between markers, with the
command, date and commit, and the training record read from the checkpoint (epochs, steps,
wall time, per-epoch metrics). Needs the whole test set (``bincount data fetch`` or the JPEG
copy), not the bundled sample.
"""

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "networks"
BEGIN = "<!-- bench/default_network.py: begin -->"
END = "<!-- bench/default_network.py: end -->"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="the trained deployable checkpoint")
    p.add_argument("--name", default="reactnet18_w0.25", help="file name stem in networks/")
    p.add_argument("--baseline", default=None, help="baseline checkpoint of the same budget")
    p.add_argument("--ptq", default=None, help="PTQ conversion of the baseline")
    p.add_argument("--simple-qat", default=None, help="simple QAT checkpoint")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def topk(logits, labels):
    import numpy as np

    order = np.argsort(-logits, axis=1, kind="stable")
    return (float(np.mean(order[:, 0] == labels)),
            float(np.mean((order[:, :5] == labels[:, None]).any(axis=1))))


def float_logits(model, x, batch=500):
    import numpy as np
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.as_tensor(x[i:i + batch])).numpy())
    return np.concatenate(out)


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    args = parse(argv)
    import numpy as np
    import torch

    from bincount.fileio import atomic_write_text, replace_marked_section
    from bincount.model.data import cifar
    from bincount.model.export.network_export import export_arrays
    from bincount.model.training.train import load_model
    from bincount.model.export.network_file import save_export
    from bincount.model.export.network_reference import NetworkReference

    torch.set_num_threads(args.threads)
    t0 = time.time()
    pixels, labels = cifar.load_split("test", data_dir=args.data_dir)
    src = cifar.find_source("test", args.data_dir)
    x = cifar.normalize(pixels)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model = load_model(ckpt)
    cfg = model.config
    if not (cfg.get("shortcut") == "concat" and cfg.get("slopes") == "pow2"
            and cfg.get("fixed_point")):
        sys.exit(f"default_network: {args.checkpoint} is not deployable (needs shortcut=concat, "
                 f"slopes=pow2, fixed_point=true; has {cfg})")
    arrays = export_arrays(model, source={"checkpoint": Path(args.checkpoint).name,
                                          "epochs": int(ckpt.get("epoch", 0))})
    out = NETWORKS / f"{args.name}.npz"
    save_export(out, arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    sums = NETWORKS / "SHA256SUMS"
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else [])
             if not ln.endswith(f"  {out.name}")]
    atomic_write_text(sums, "\n".join(sorted(lines + [f"{digest}  {out.name}"])) + "\n")

    ref = NetworkReference(out)
    int_logits = np.concatenate([ref.run(pixels[i:i + 500]) for i in range(0, len(pixels), 500)])
    fixed = float_logits(model, x)
    model.set_fixed_point(False)
    plain = float_logits(model, x)
    model.set_fixed_point(True)
    pi, pf, pp = (np.argmax(v, axis=1) for v in (int_logits, fixed, plain))
    res = {"images": int(len(labels)), "data": f"{src.kind} {src.path.name} ({src.split})",
           "integer": topk(int_logits, labels), "float_fixed_point": topk(fixed, labels),
           "float_plain": topk(plain, labels),
           "agree_fixed_point": int(np.sum(pi == pf)), "agree_plain": int(np.sum(pi == pp))}
    others = []
    for label, path in (("baseline", args.baseline), ("PTQ of the baseline", args.ptq),
                        ("simple QAT", args.simple_qat)):
        if path:
            m = load_model(path)
            others.append((label, path, topk(float_logits(m, x), labels)))
    meta = arrays["meta"]
    metrics = ckpt.get("metrics", [])
    conf = ckpt.get("config", {})
    text = [BEGIN, "## Measured (whole CIFAR-10 test set)", "",
            f"- Command: `python bench/default_network.py --checkpoint {args.checkpoint}"
            + "".join(f" --{k.replace('_', '-')} {v}" for k, v in
                      (("baseline", args.baseline), ("ptq", args.ptq),
                       ("simple_qat", args.simple_qat)) if v) + "`",
            f"- Date {datetime.date.today().isoformat()}, commit {commit()}, "
            f"{time.time() - t0:.0f} s; data: {res['data']}, {res['images']:,} images",
            f"- Export: `networks/{out.name}`, {out.stat().st_size:,} bytes, SHA-256 `{digest}`; "
            f"{meta['network']} {meta['variant']}, width {meta['width_mult']:g}, "
            f"{len(meta['layers'])} binary layers, form {meta['form']}",
            f"- Training record (from the checkpoint): {int(ckpt.get('epoch', 0))} epochs of "
            f"{conf.get('epochs', '?')} planned, batch {conf.get('batch_size', '?')}, "
            f"lr {conf.get('lr', '?')}, seed {conf.get('seed', '?')}, "
            f"from baseline {Path(conf['from_baseline']).name if conf.get('from_baseline') else 'none'}, "
            f"wall time {float(ckpt.get('wall_s', 0)):.0f} s",
            "", "| model | top-1 % | top-5 % |", "| --- | ---: | ---: |",
            f"| integer reference of the export (what the hardware computes) | "
            f"{100 * res['integer'][0]:.2f} | {100 * res['integer'][1]:.2f} |",
            f"| float model as trained (`fixed_point` on) | {100 * res['float_fixed_point'][0]:.2f}"
            f" | {100 * res['float_fixed_point'][1]:.2f} |",
            f"| float model, plain forward (`fixed_point` off) | {100 * res['float_plain'][0]:.2f}"
            f" | {100 * res['float_plain'][1]:.2f} |"]
    for label, path, (t1, t5) in others:
        text.append(f"| {label} (`{Path(path).name}`), same width and budget | {100 * t1:.2f} | "
                    f"{100 * t5:.2f} |")
    text += ["",
             f"Top-1 agreement of the integer reference with the float model as trained: "
             f"{res['agree_fixed_point']:,} / {res['images']:,} images; with the plain float "
             f"forward: {res['agree_plain']:,} / {res['images']:,}.", ""]
    if metrics:
        text += ["Per-epoch record of the run (test figures on the run's `--eval-limit` subset):",
                 "", "| epoch | train loss | train top-1 % | test top-1 % | seconds |",
                 "| ---: | ---: | ---: | ---: | ---: |"]
        for i, mt in enumerate(metrics, 1):
            text.append(f"| {i} | {mt['train_loss']:.3f} | {mt['train_top1']:.2f} | "
                        f"{mt['test_top1']:.2f} | {mt['epoch_s']:.0f} |")
        text.append("")
    text.append(END)
    replace_marked_section(NETWORKS / "README.md", BEGIN, END, "\n".join(text) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
