"""Training of the CIFAR-10 networks: Adam + cosine LR, resumable atomic checkpoints.

Recipe (ReActNet's, without knowledge distillation, which is out of scope here: the loss is the
plain cross-entropy with the labels):

* Adam (betas 0.9 / 0.999), weight decay on the conv / FC weights only (tensors of two or more
  dimensions), none on BN, biases, thresholds and RPReLU;
* learning rate ``lr * (1 + cos(pi * t / T)) / 2`` per step ``t`` of ``T`` steps of a phase;
* standard augmentation (:mod:`bincount.model.data`): random crop with 4-pixel padding and
  horizontal flips, CIFAR-10 mean / std normalisation.

Schedules (``schedule``):

* ``"cosine"``: one phase of ``epochs`` epochs with binary activations and binary weights;
* ``"two-step"``: ReActNet's two steps. Step 1 (``ceil(epochs / 2)`` epochs): binary
  activations, real-valued weights (the binary convolution computes ``conv(sign(x), W)``), with
  weight decay. Step 2 (the remaining epochs): binary activations and weights, initialised from
  step 1, with a fresh optimizer and cosine schedule and no weight decay (as ReActNet's step 2).

Determinism: the model is initialised from ``torch.manual_seed(seed)``, the training subset
(``train_limit``) is a class-balanced draw from ``seed``, and epoch ``e``'s order and
augmentation come from ``(seed, e)`` only. A run stopped after any epoch and resumed from its
checkpoint therefore reproduces the uninterrupted run (on the same device and thread count).

Checkpoints (:func:`save_checkpoint`) are written atomically after every epoch and hold only
tensors, dicts, lists, strings, numbers and booleans, so ``torch.load(path, weights_only=True)``
reads them. Keys:

``format`` (``"bincount-checkpoint"``), ``version``, ``network``, ``variant``, ``width_mult``,
``flags`` (keyword flags of ``build_network`` as given), ``network_config`` (the network's own
``config``, all flags filled in), ``config`` (the run's settings, see
:data:`DEFAULTS`), ``epoch`` (epochs completed), ``phase`` (of the last epoch), ``binary_weights``,
``done``, ``model`` (state dict), ``optimizer`` (state dict, absent for a converted model),
``rng`` (``{"torch": ByteTensor, "cuda": [ByteTensor, ...]}``), ``metrics`` (one dict per epoch),
``wall_s`` (training seconds over all invocations), ``data`` (the data source, as text).
"""

import contextlib
import io
import math
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bincount.errors import BincountError
from bincount.fileio import atomic_write_bytes, atomic_write_json
from bincount.model.progress import Progress
from bincount.model.train_config import (DEFAULTS, FORMAT, NETWORKS, RUN_KEYS, SCHEDULES,
                                         VERSION)

__all__ = ["FORMAT", "VERSION", "NETWORKS", "SCHEDULES", "DEFAULTS", "RUN_KEYS", "build_model",
           "variants", "resolve_device", "resolve_config", "phases", "make_optimizer",
           "cosine_lr", "set_binary_weights", "save_checkpoint", "load_checkpoint",
           "model_from_checkpoint", "train", "summary", "AMP_MODES", "resolve_amp",
           "distributed_env", "train_step"]

#: ``--amp`` choices: ``auto`` (bf16 on CUDA, off on the CPU), ``off``, ``bf16``, ``fp16``.
AMP_MODES = ("auto", "off", "bf16", "fp16")


def _err(msg):
    print(msg, file=sys.stderr, flush=True)


# -- the networks (indirection so that tests can substitute a small model) ------------------

def build_model(network, variant, width_mult=1.0, flags=None):
    """``bincount.model.networks.build_network(network, variant, width_mult, **flags)``."""
    from bincount.model.networks import build_network

    return build_network(network, variant, width_mult=width_mult, **(flags or {}))


def variants():
    """The variant names the networks accept."""
    try:
        from bincount.model.networks import VARIANTS
    except ImportError:
        from bincount.model.variants import VARIANTS
    return tuple(VARIANTS)


def convert_model_to_ptq(model):
    """``bincount.model.networks.convert_to_ptq(model)`` (returns the converted model)."""
    from bincount.model.networks import convert_to_ptq

    out = convert_to_ptq(model)
    return model if out is None else out


# -- settings -------------------------------------------------------------------------------

def resolve_device(name=None):
    """``"cpu"`` / ``"cuda"``; ``None`` or ``"auto"``: CUDA when available, else the CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BincountError("--device cuda was asked for but torch sees no CUDA device; "
                            "use --device cpu")
    if name not in ("cpu", "cuda"):
        raise BincountError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


def resolve_amp(name, dev):
    """The autocast dtype of ``--amp name`` on device ``dev`` (``None``: full float32).

    Mixed precision is for CUDA: ``auto`` is ``bf16`` there and off on the CPU. Only the real
    convolutions and the FC run in the lower precision (their outputs are turned back to
    float32 before BN and the fixed-point rounding); the binary convolutions always run in
    float32, where their integer sums are exact.
    """
    name = name or "auto"
    if name not in AMP_MODES:
        raise BincountError(f"unknown --amp {name!r}; expected one of {', '.join(AMP_MODES)}")
    if name == "auto":
        name = "bf16" if dev.type == "cuda" else "off"
    if name == "off":
        return None
    if dev.type != "cuda":
        raise BincountError(f"--amp {name} is for CUDA; on the CPU train in float32 (--amp off)")
    return torch.bfloat16 if name == "bf16" else torch.float16


def distributed_env():
    """``(rank, world_size, local_rank)`` of a ``torchrun`` launch (its ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``), ``(0, 1, 0)`` otherwise."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise BincountError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by "
                            "torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise BincountError(f"RANK {rank} outside WORLD_SIZE {world}")
    return rank, world, local


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def resolve_config(given, stored=None):
    """The run's settings: ``given`` (``None`` values = not given) over :data:`DEFAULTS`;
    for a resumed run ``stored`` (the checkpoint's) wins and a conflicting ``given`` value is
    an error. The result is validated."""
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise BincountError(f"unknown training settings {sorted(unknown)}")
    if stored is not None:
        cfg = {k: stored.get(k, DEFAULTS[k]) for k in DEFAULTS}
        clash = [k for k, v in given.items() if v is not None and not _same(v, cfg[k])]
        if clash:
            desc = ", ".join(f"{k}={given[k]!r} (checkpoint: {cfg[k]!r})" for k in clash)
            raise BincountError(f"--resume continues the run recorded in the checkpoint; "
                                f"these settings differ from it: {desc}")
    else:
        cfg = dict(DEFAULTS)
        cfg.update({k: v for k, v in given.items() if v is not None})
    cfg["flags"] = dict(cfg["flags"] or {})
    _validate(cfg)
    return cfg


def _validate(cfg):
    if cfg["network"] not in NETWORKS:
        raise BincountError(f"unknown network {cfg['network']!r}; expected one of "
                            f"{', '.join(NETWORKS)}")
    names = variants()
    if cfg["variant"] not in names:
        raise BincountError(f"unknown variant {cfg['variant']!r}; expected one of "
                            f"{', '.join(names)}")
    if cfg["variant"] == "ptq":
        raise BincountError("the ptq variant is not trained: train a baseline, then run "
                            "'bincount convert-ptq --checkpoint BASE -o OUT'")
    if cfg["schedule"] not in SCHEDULES:
        raise BincountError(f"unknown schedule {cfg['schedule']!r}; expected one of "
                            f"{', '.join(SCHEDULES)}")
    for key, low in (("epochs", 1), ("batch_size", 1)):
        if int(cfg[key]) != cfg[key] or cfg[key] < low:
            raise BincountError(f"{key.replace('_', '-')} must be an integer >= {low}, "
                                f"got {cfg[key]!r}")
    if cfg["schedule"] == "two-step" and cfg["epochs"] < 2:
        raise BincountError("the two-step schedule needs at least 2 epochs (one per step)")
    for key in ("train_limit", "eval_limit"):
        if cfg[key] is not None and cfg[key] < 1:
            raise BincountError(f"{key.replace('_', '-')} must be at least 1, got {cfg[key]!r}")
    if not cfg["lr"] > 0:
        raise BincountError(f"lr must be positive, got {cfg['lr']!r}")
    if not cfg["weight_decay"] >= 0:
        raise BincountError(f"weight-decay must be >= 0, got {cfg['weight_decay']!r}")
    if not cfg["width_mult"] > 0:
        raise BincountError(f"width-mult must be positive, got {cfg['width_mult']!r}")


def phases(cfg):
    """``[(name, first_epoch, epochs, binary_weights, weight_decay)]`` of the schedule."""
    e, wd = cfg["epochs"], cfg["weight_decay"]
    if cfg["schedule"] == "two-step":
        e1 = (e + 1) // 2
        return [("step1", 0, e1, False, wd), ("step2", e1, e - e1, True, 0.0)]
    return [("main", 0, e, True, wd)]


def _phase_of(plan, epoch):
    for i, ph in enumerate(plan):
        if ph[1] <= epoch < ph[1] + ph[2]:
            return i
    return len(plan) - 1


def cosine_lr(base, step, total):
    """``base * (1 + cos(pi * step / total)) / 2``."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def make_optimizer(model, lr, weight_decay, foreach=True):
    """Adam; weight decay only on parameters with two or more dimensions (conv / FC weights).
    ``foreach``: torch's multi-tensor implementation (a few ops over all parameters instead of
    a dozen per parameter; ``None``: torch's default, the per-parameter loop on the CPU)."""
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else plain).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999),
                            foreach=foreach)


# -- real-valued weights (step 1 of the two-step schedule) ----------------------------------

def _real_weight_dot(self, x):
    """``conv(sign(x), W)``: binary activations (padded as the layer pads), real weights."""
    from bincount.model.ste import sign_ste

    pad = getattr(self, "pad_value", 1.0)
    xb = F.pad(sign_ste(x), [self.padding] * 4, value=pad)
    return F.conv2d(xb, self.weight, stride=self.stride)


def set_binary_weights(model, enabled):
    """Switch every binary convolution of ``model`` between binary weights (``sign(W)``, the
    default) and real-valued weights (``W``; step 1 of the two-step schedule). Uses the
    network's own ``set_binary_weights`` when it has one."""
    own = getattr(model, "set_binary_weights", None)
    if callable(own):
        own(bool(enabled))
        return model
    from bincount.model.binary_conv import BinaryConv2d

    for m in model.modules():
        if isinstance(m, BinaryConv2d):
            m.binary_weights = bool(enabled)      # read by the fused path (forward_fast)
            if enabled:
                m.__dict__.pop("dot", None)
            else:
                m.dot = types.MethodType(_real_weight_dot, m)
    return model


# -- checkpoints ----------------------------------------------------------------------------

def save_checkpoint(path, ckpt):
    """``torch.save`` to ``path`` atomically (temporary file, then rename)."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path):
    """Load a checkpoint with ``weights_only=True`` onto the CPU; :class:`BincountError` for a
    missing, unreadable or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise BincountError(f"checkpoint {str(path)!r} does not exist; expected a file written "
                            f"by 'bincount train' or 'bincount convert-ptq'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BincountError(f"checkpoint {str(path)!r} is not a readable bincount checkpoint "
                            f"({type(exc).__name__}: {first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise BincountError(f"{str(path)!r} is not a bincount checkpoint (no format "
                            f"{FORMAT!r}); expected a file written by 'bincount train'")
    if int(ckpt.get("version", 0)) > VERSION:
        raise BincountError(f"checkpoint {str(path)!r} has version {ckpt.get('version')}; this "
                            f"bincount reads up to version {VERSION}")
    return ckpt


def _load_state(model, state, where):
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BincountError(f"{where}: weights do not fit the network ({' '.join(first[:2])[:300]})"
                            ) from None


def model_from_checkpoint(ckpt, device="cpu", where="checkpoint"):
    """The network of a loaded checkpoint with its weights, in eval mode, on ``device``."""
    model = build_model(ckpt["network"], ckpt["variant"], ckpt["width_mult"], ckpt.get("flags"))
    _load_state(model, ckpt["model"], where)
    set_binary_weights(model, ckpt.get("binary_weights", True))
    return model.to(device).eval()


def _rng_state():
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state):
    if state and "torch" in state:
        torch.set_rng_state(state["torch"])
    if state and state.get("cuda") and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, IndexError):
            pass


def _plain(v):
    """A JSON / weights_only-safe copy of a setting."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


# -- training -------------------------------------------------------------------------------

def _accuracy_counts(logits, y):
    return int((logits.argmax(dim=1) == y).sum())


def train_step(model, optimizer, x, y, lr, amp_dtype=None, scaler=None):
    """One training step: the learning rate ``lr`` into every group, forward (under autocast
    when ``amp_dtype``), cross-entropy, backward, optimizer step. Returns ``(logits, loss)``;
    a non-finite loss raises ``FloatingPointError`` before any update."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    ctx = (torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None
           else contextlib.nullcontext())
    with ctx:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    if not torch.isfinite(loss):
        raise FloatingPointError(float(loss))
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return logits, loss


def _init_distributed(dev_name):
    """Join the ``torchrun`` process group (NCCL on CUDA, gloo on the CPU); returns
    ``(rank, world, device)``."""
    import torch.distributed as dist

    rank, world, local = distributed_env()
    dev = resolve_device(dev_name)
    if dev.type == "cuda":
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


def train(given, checkpoint, resume=False, force=False, device=None, threads=None,
          data_dir=None, stop_after=None, progress=True, log=_err, amp=None,
          channels_last=False):
    """Train (or resume) a run; returns the checkpoint dict of the last completed epoch.

    ``given``: settings (keys of :data:`DEFAULTS`, ``None`` = not given). ``checkpoint``: the
    file written after every epoch (``--resume`` reads it first). ``stop_after``: stop after
    that many epochs of this invocation (the run can be resumed later). ``amp``: see
    :func:`resolve_amp`. ``channels_last``: model and batches in that memory format (about
    10 % faster convolutions on the CPU, but BN reduces its statistics in another order, so
    the run differs from the default one by float rounding; off by default).

    Launched by ``torchrun`` (``WORLD_SIZE > 1``), every process trains a
    ``DistributedDataParallel`` copy on its shard of each epoch (``Batches(rank, world)``,
    ``batch_size`` images per process and step); rank 0 alone evaluates, logs and writes the
    checkpoint; every rank returns a checkpoint dict with the same weights and figures.
    """
    from bincount.model.cifar import find_source, load_split
    from bincount.model.data import Batches, subset_indices
    from bincount.model.evaluate import eval_split

    checkpoint = Path(checkpoint)
    stored = None
    if resume:
        stored = load_checkpoint(checkpoint)
        if "optimizer" not in stored or "config" not in stored:
            raise BincountError(f"checkpoint {str(checkpoint)!r} is not a training checkpoint "
                                f"(converted models cannot be resumed)")
    elif checkpoint.exists() and not force:
        raise BincountError(f"checkpoint {str(checkpoint)!r} already exists; pass --resume to "
                            f"continue that run or --force to start a new one over it")
    cfg = resolve_config(given, stored["config"] if stored else None)
    if stop_after is not None and stop_after < 1:
        raise BincountError(f"stop-after must be at least 1, got {stop_after!r}")
    rank, world, dev = _init_distributed(device)
    amp_dtype = resolve_amp(amp, dev)
    if rank != 0:
        log, progress = (lambda msg: None), False
    if threads:
        torch.set_num_threads(int(threads))
    if stored is not None and stored.get("done") and stored["epoch"] >= cfg["epochs"]:
        log(f"run in {str(checkpoint)!r} is complete ({stored['epoch']} epochs); nothing to do")
        return stored

    # data first: a missing or malformed data set fails before anything is written
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    src = find_source("train", data_dir)
    images, labels = load_split("train", data_dir, verbose=progress)
    idx = subset_indices(labels, cfg["train_limit"], cfg["seed"])
    if len(idx) < len(labels):
        images, labels = images[idx], labels[idx]
    find_source("test", data_dir)
    batches = Batches(images, labels, cfg["batch_size"], augment=True, seed=cfg["seed"],
                      device=dev, rank=rank, world=world, memory_format=fmt)
    steps = len(batches)

    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["network"], cfg["variant"], cfg["width_mult"], cfg["flags"])
    if stored is None and cfg["from_baseline"]:
        base = load_checkpoint(cfg["from_baseline"])
        if (base["network"], float(base["width_mult"])) != (cfg["network"],
                                                              float(cfg["width_mult"])):
            raise BincountError(f"--from-baseline {cfg['from_baseline']!r} is a "
                                f"{base['network']} at width {base['width_mult']}; this run is "
                                f"a {cfg['network']} at width {cfg['width_mult']}")
        _load_state(model, base["model"], f"--from-baseline {cfg['from_baseline']!r}")
    model.to(dev, memory_format=fmt)
    scaler = torch.amp.GradScaler(dev.type) if amp_dtype == torch.float16 else None

    plan = phases(cfg)
    metrics, wall = [], 0.0
    start_epoch = 0
    optimizer, opt_phase = None, None
    if stored is not None:
        _load_state(model, stored["model"], f"checkpoint {str(checkpoint)!r}")
        start_epoch = int(stored["epoch"])
        metrics = list(stored.get("metrics", []))
        wall = float(stored.get("wall_s", 0.0))
        _set_rng_state(stored.get("rng"))
        ph = _phase_of(plan, start_epoch)
        if start_epoch > 0 and _phase_of(plan, start_epoch - 1) == ph:
            name, _, _, binw, wd = plan[ph]
            set_binary_weights(model, binw)
            optimizer = make_optimizer(model, cfg["lr"], wd)
            optimizer.load_state_dict(stored["optimizer"])
            opt_phase = ph
        log(f"resuming {str(checkpoint)!r} after epoch {start_epoch}/{cfg['epochs']}")

    net = model                        # the network; `model` is its DDP wrapper in a torchrun
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda"
                                        else None, find_unused_parameters=True)
    desc = (f"{cfg['network']} {cfg['variant']} w{cfg['width_mult']:g}: {len(idx)} train "
            f"images, {steps} steps/epoch, {cfg['epochs']} epochs ({cfg['schedule']}), "
            f"device {dev}, {torch.get_num_threads()} threads"
            + (f", {world} processes x {cfg['batch_size']} images per step" if world > 1 else "")
            + (f", autocast {str(amp_dtype).replace('torch.', '')}" if amp_dtype else ""))
    log(desc)
    ckpt = stored
    done_here = 0
    for epoch in range(start_epoch, cfg["epochs"]):
        ph = _phase_of(plan, epoch)
        name, first, count, binw, wd = plan[ph]
        if optimizer is None or opt_phase != ph:
            set_binary_weights(net, binw)
            optimizer = make_optimizer(net, cfg["lr"], wd)
            opt_phase = ph
        t0 = time.monotonic()
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        bar = Progress(batches.num_images, f"epoch {epoch + 1}/{cfg['epochs']} [{name}]",
                       enabled=progress)
        lr = cfg["lr"]
        for i, (x, y) in enumerate(batches.epoch(epoch)):
            lr = cosine_lr(cfg["lr"], (epoch - first) * steps + i, count * steps)
            try:
                logits, loss = train_step(model, optimizer, x, y, lr, amp_dtype, scaler)
            except FloatingPointError as exc:
                raise BincountError(f"training diverged at epoch {epoch + 1}, step {i + 1} "
                                    f"(loss {exc}); try a smaller --lr") from None
            total_loss += loss.item() * len(y)
            correct += _accuracy_counts(logits.detach(), y)
            seen += len(y)
            bar.update(len(y), loss=f"{total_loss / seen:.3f}",
                       acc=f"{100 * correct / seen:.1f}%", lr=f"{lr:.2e}")
        bar.close()
        if world > 1:                  # rank 0's BN statistics (as DDP's next forward would
            for b in net.buffers():    # take them), the epoch's figures over all ranks
                dist.broadcast(b, 0)
            sums = torch.tensor([total_loss, correct, seen], dtype=torch.float64, device=dev)
            dist.all_reduce(sums)
            total_loss, correct, seen = float(sums[0]), int(sums[1]), int(sums[2])
        train_s = time.monotonic() - t0
        ev = None
        if rank == 0:
            ev = eval_split(net, "test", cfg["eval_limit"], batch_size=500, device=dev,
                            data_dir=data_dir, progress=progress)
        if world > 1:
            box = [ev]
            dist.broadcast_object_list(box, src=0)
            ev = box[0]
        epoch_s = time.monotonic() - t0
        wall += epoch_s
        m = {"epoch": epoch + 1, "phase": name, "lr_last": lr,
             "train_images": seen, "train_loss": total_loss / max(seen, 1),
             "train_top1": 100.0 * correct / max(seen, 1),
             "test_images": ev["images"], "test_loss": ev["loss"], "test_top1": ev["top1"],
             "test_top5": ev["top5"], "train_s": train_s, "epoch_s": epoch_s, "wall_s": wall}
        metrics.append(m)
        ckpt = {
            "format": FORMAT, "version": VERSION,
            "network": cfg["network"], "variant": cfg["variant"],
            "width_mult": float(cfg["width_mult"]), "flags": _plain(cfg["flags"]),
            "network_config": _plain(getattr(net, "config", {})), "config": _plain(cfg), "epoch": epoch + 1, "phase": name, "binary_weights": binw,
            "done": epoch + 1 >= cfg["epochs"],
            "model": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
            "optimizer": optimizer.state_dict(), "rng": _rng_state(),
            "metrics": _plain(metrics), "wall_s": wall, "data": src.describe(),
        }
        if rank == 0:
            save_checkpoint(checkpoint, ckpt)
            atomic_write_json(checkpoint.with_suffix(".json"),
                              {k: ckpt[k] for k in ("network", "variant", "width_mult", "flags",
                                                    "config", "epoch", "done", "wall_s", "data",
                                                    "metrics")})
        if world > 1:
            dist.barrier()
        log(f"epoch {epoch + 1}/{cfg['epochs']} [{name}] loss {m['train_loss']:.4f} "
            f"train {m['train_top1']:.2f}% | test top-1 {ev['top1']:.2f}% top-5 {ev['top5']:.2f}% "
            f"({ev['images']} images) | {epoch_s:.0f} s, total {wall:.0f} s -> {checkpoint}")
        done_here += 1
        if stop_after is not None and done_here >= stop_after and epoch + 1 < cfg["epochs"]:
            log(f"stopped after {done_here} epoch(s); continue with --resume")
            break
    return ckpt


def summary(ckpt):
    """A one-line result of a checkpoint (last epoch's test accuracy)."""
    last = ckpt["metrics"][-1] if ckpt.get("metrics") else None
    if last is None:
        return f"{ckpt['network']} {ckpt['variant']}: no epochs"
    return (f"{ckpt['network']} {ckpt['variant']} w{ckpt['width_mult']:g} epoch {last['epoch']}: "
            f"test top-1 {last['test_top1']:.2f}% top-5 {last['test_top5']:.2f}% on "
            f"{last['test_images']} images, {ckpt.get('wall_s', 0):.0f} s")

