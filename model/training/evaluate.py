"""Top-1 / top-5 accuracy of a network on a CIFAR-10 split.

:func:`evaluate` runs a model in eval mode over :class:`bincount.model.data.batches.Batches` (no
augmentation) and returns the mean cross-entropy, top-1 and top-5 accuracy in percent.
:func:`eval_split` loads the split (or a class-balanced subset of ``limit`` images, drawn with
a fixed seed so every run and every variant sees the same images) and evaluates on it.
"""

import torch
import torch.nn.functional as F

from bincount.model.data.cifar import load_split
from bincount.model.data.batches import Batches, subset_indices
from bincount.model.training.progress import Progress

__all__ = ["evaluate", "eval_split", "load_eval_images", "EVAL_SUBSET_SEED"]

#: Seed of the balanced subset used when an evaluation is limited to fewer images.
EVAL_SUBSET_SEED = 0


@torch.no_grad()
def evaluate(model, batches, desc="eval", progress=True):
    """``{"images", "loss", "top1", "top5"}`` (accuracies in %) of ``model`` on ``batches``."""
    was_training = model.training
    model.eval()
    n = 0
    loss = 0.0
    top1 = top5 = 0
    bar = Progress(batches.num_images, desc, enabled=progress)
    try:
        for x, y in batches:
            logits = model(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hit = top == y[:, None]
            top1 += int(hit[:, 0].sum())
            top5 += int(hit.any(dim=1).sum())
            n += len(y)
            bar.update(len(y), top1=f"{100 * top1 / n:.2f}%")
        bar.close()
    finally:
        model.train(was_training)
    n = max(n, 1)
    return {"images": n, "loss": loss / n, "top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n}


def load_eval_images(split="test", limit=None, data_dir=None, verbose=True):
    """``(images, labels)`` of ``split``, or a balanced ``limit``-image subset of it."""
    images, labels = load_split(split, data_dir, verbose=verbose)
    idx = subset_indices(labels, limit, EVAL_SUBSET_SEED)
    if len(idx) < len(labels):
        images, labels = images[idx], labels[idx]
    return images, labels


def eval_split(model, split="test", limit=None, batch_size=500, device="cpu", data_dir=None,
               progress=True):
    """Evaluate ``model`` on ``split`` (see :func:`load_eval_images`)."""
    images, labels = load_eval_images(split, limit, data_dir, verbose=progress)
    batches = Batches(images, labels, batch_size, augment=False, device=device)
    return evaluate(model, batches, desc=f"eval {split}", progress=progress)
