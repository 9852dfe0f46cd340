"""Training of the CIFAR-10 networks: Adam + cosine LR, resumable atomic checkpoints.

Recipe (ReActNet's, without knowledge distillation, which is out of scope here: the loss is the
plain cross-entropy with the labels):

* Adam (betas 0.9 / 0.999), weight decay on the conv / FC weights only (tensors of two or more
  dimensions), none on BN, biases, thresholds and RPReLU;
* learning rate ``lr * (1 + cos(pi * t / T)) / 2`` per step ``t`` of ``T`` steps of a phase;
* standard augmentation (:mod:`bincount.model.data.batches`): random crop with 4-pixel padding and
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
import pickle
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
# DistributedDataParallel imports torch.distributed.nn.functional, whose functions take
# ``group=group.WORLD`` as a default argument: imported after init_process_group(), they hold
# the group forever, destroy_process_group() cannot free it, and its gloo threads still run
# when the interpreter exits (now and then "terminate called without an active exception",
# SIGABRT). Imported here, before any group exists, the defaults are None. (A torch built
# without distributed support cannot import it, and trains in one process.)
if dist.is_available():
    import torch.distributed.nn.functional  # noqa: F401
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from bincount.errors import BincountError
from bincount.fileio import (atomic_write_bytes, atomic_write_json, check_outputs, file_kind,
                             file_path, output_lock)
from bincount.model.layers.binary_conv import BinaryConv2d
from bincount.model.data.cifar import find_source, load_split
from bincount.model.data.batches import Batches, subset_indices
from bincount.model.training.evaluate import eval_split
from bincount.model.nets.networks import VARIANTS, build_network, convert_to_ptq
from bincount.model.training.progress import Progress
from bincount.model.training.train_config import (DEFAULTS, FORMAT, LIMITS, NETWORKS, RUN_KEYS,
                                         SCHEDULES, VERSION)

__all__ = ["FORMAT", "VERSION", "NETWORKS", "SCHEDULES", "DEFAULTS", "RUN_KEYS", "build_model",
           "variants", "resolve_device", "resolve_config", "phases", "make_optimizer",
           "cosine_lr", "set_binary_weights", "save_checkpoint", "load_checkpoint",
           "check_checkpoint", "load_model", "model_from_checkpoint", "train", "summary", "AMP_MODES",
           "resolve_amp", "distributed_env", "train_step"]

#: ``--amp`` choices: ``auto`` (bf16 on CUDA, off on the CPU), ``off``, ``bf16``, ``fp16``.
AMP_MODES = ("auto", "off", "bf16", "fp16")


def _err(msg):
    print(msg, file=sys.stderr, flush=True)


# -- the networks (indirection so that tests can substitute a small model) ------------------

def build_model(network, variant, width_mult=1.0, flags=None):
    """``bincount.model.nets.networks.build_network(network, variant, width_mult, **flags)``."""
    return build_network(network, variant, width_mult=width_mult, **(flags or {}))


def variants():
    """The variant names the networks accept."""
    return tuple(VARIANTS)


def convert_model_to_ptq(model):
    """``bincount.model.nets.networks.convert_to_ptq(model)`` (returns the converted model)."""
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
    if cfg["flags"] is None:
        cfg["flags"] = {}
    _validate(cfg)
    cfg["flags"] = dict(cfg["flags"])
    return cfg


def _validate(cfg):
    def need(key, ok, want):
        if not ok(cfg[key]):
            raise BincountError(f"{key.replace('_', '-')} must be {want}, got {cfg[key]!r}")

    for key in ("network", "variant", "schedule"):
        need(key, lambda v: isinstance(v, str), "a name")
    if cfg["network"] not in NETWORKS:
        raise BincountError(f"unknown network {cfg['network']!r}; expected one of "
                            f"{', '.join(NETWORKS)}")
    names = variants()
    if cfg["variant"] not in names:
        raise BincountError(f"unknown variant {cfg['variant']!r}; expected one of "
                            f"{', '.join(n for n in names if n != 'ptq')} (ptq comes from "
                            f"'bincount convert-ptq' of a trained baseline)")
    if cfg["variant"] == "ptq":
        raise BincountError("the ptq variant is not trained: train a baseline, then run "
                            "'bincount convert-ptq --checkpoint BASE -o OUT'")
    if cfg["schedule"] not in SCHEDULES:
        raise BincountError(f"unknown schedule {cfg['schedule']!r}; expected one of "
                            f"{', '.join(SCHEDULES)}")
    for key, low, high in (("epochs", 1, LIMITS["epochs"]), ("batch_size", 1, LIMITS["batch_size"]),
                           ("seed", 0, LIMITS["seed"])):
        need(key, lambda v: _integer(v) and low <= v <= high, f"an integer in {low}..{high}")
    if cfg["schedule"] == "two-step" and cfg["epochs"] < 2:
        raise BincountError("the two-step schedule needs at least 2 epochs (one per step)")
    for key in ("train_limit", "eval_limit"):
        need(key, lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1")
    need("lr", lambda v: _real(v) and 0 < v <= LIMITS["lr"], f"a number > 0 and <= {LIMITS['lr']:g}")
    need("weight_decay", lambda v: _real(v) and 0 <= v <= LIMITS["weight_decay"],
         f"a number >= 0 and <= {LIMITS['weight_decay']:g}")
    need("width_mult", lambda v: _real(v) and 0 < v <= LIMITS["width_mult"],
         f"a number > 0 and <= {LIMITS['width_mult']:g}")
    need("flags", lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
         "a dict of named flags")
    need("from_baseline", lambda v: v is None or isinstance(v, str), "a path")


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

def set_binary_weights(model, enabled):
    """Switch every binary convolution of ``model`` between binary weights (``sign(W)``, the
    default) and real-valued weights (``W``; step 1 of the two-step schedule). Uses the
    network's own ``set_binary_weights`` when it has one."""
    own = getattr(model, "set_binary_weights", None)
    if callable(own):
        own(bool(enabled))
        return model
    for m in model.modules():
        if isinstance(m, BinaryConv2d):
            m.binary_weights = bool(enabled)
    return model


# -- checkpoints ----------------------------------------------------------------------------

def checkpoint_bytes(ckpt):
    """The bytes ``torch.save`` writes for ``ckpt``."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def save_checkpoint(path, ckpt):
    """``torch.save`` to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_bytes(path, checkpoint_bytes(ckpt))


_EXPECTED = "expected a file written by 'bincount train' or 'bincount convert-ptq'"


def _real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_checkpoint(ckpt, where="checkpoint", training=False):
    """Check a loaded checkpoint dict field by field (the format in the module docstring);
    :class:`BincountError` ``"{where}: ..."`` naming the first wrong field. ``training``: also
    the fields a resumed run needs (``config``, ``optimizer``, ``epoch``). Returns ``ckpt``."""
    def fail(msg):
        raise BincountError(f"{where}: {msg} (as 'bincount train' and 'bincount convert-ptq' "
                            f"write it)")

    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = (f"format {ckpt.get('format')!r}" if isinstance(ckpt, dict)
                 else f"a {type(ckpt).__name__}")
        fail(f"is not a bincount checkpoint ({found}, not a dict with format {FORMAT!r})")
    version = ckpt.get("version")
    if not _integer(version) or version < 1:
        fail(f"field 'version' is {version!r}; expected an integer 1..{VERSION}")
    if version > VERSION:
        raise BincountError(f"{where}: has version {version}; this bincount reads versions "
                            f"1..{VERSION} (a newer bincount wrote it)")
    if ckpt.get("network") not in NETWORKS:
        fail(f"field 'network' is {ckpt.get('network')!r}; expected one of "
             f"{', '.join(NETWORKS)}")
    names = variants()
    if ckpt.get("variant") not in names:
        fail(f"field 'variant' is {ckpt.get('variant')!r}; expected one of {', '.join(names)}")
    wm = ckpt.get("width_mult")
    if not _real(wm) or not wm > 0:
        fail(f"field 'width_mult' is {wm!r}; expected a positive number")
    flags = ckpt.get("flags")
    if flags is not None and (not isinstance(flags, dict)
                              or not all(isinstance(k, str) for k in flags)):
        fail(f"field 'flags' is a {type(flags).__name__}; expected a dict of named flags")
    for key, ok, want in (("binary_weights", lambda v: isinstance(v, bool), "true or false"),
                          ("done", lambda v: isinstance(v, bool), "true or false"),
                          ("epoch", lambda v: _integer(v) and v >= 0, "an integer >= 0"),
                          ("wall_s", lambda v: _real(v) and v >= 0, "a number >= 0"),
                          ("config", lambda v: isinstance(v, dict), "a dict"),
                          ("network_config", lambda v: isinstance(v, dict), "a dict"),
                          ("optimizer", lambda v: isinstance(v, dict), "a dict"),
                          ("rng", lambda v: isinstance(v, dict), "a dict"),
                          ("metrics", lambda v: isinstance(v, list)
                           and all(isinstance(m, dict) for m in v), "a list of dicts")):
        if key in ckpt and not ok(ckpt[key]):
            fail(f"field {key!r} is {_short(ckpt[key])}; expected {want}")
    for i, m in enumerate(ckpt.get("metrics") or []):     # the figures summary() prints
        for key, ok, want in (("epoch", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
                              ("test_top1", _real, "a number"), ("test_top5", _real, "a number"),
                              ("test_images", lambda v: _integer(v) and v >= 0,
                               "an integer >= 0")):
            if not ok(m.get(key)):
                fail(f"field 'metrics' entry {i} has {key!r} {_short(m.get(key))}; "
                     f"expected {want}")
    if training:
        missing = [k for k in ("config", "optimizer", "epoch") if k not in ckpt]
        if missing:
            raise BincountError(f"{where}: is not a training checkpoint (no "
                                f"{', '.join(map(repr, missing))}: converted models cannot be "
                                f"resumed); expected a checkpoint written by 'bincount train'")
    state = ckpt.get("model")
    if not isinstance(state, dict) or not state:
        fail(f"field 'model' is {_short(state)}; expected the network's state dict")
    for name, t in state.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            fail(f"field 'model' entry {name!r} is {_short(t)}; expected a tensor")
        if t.is_complex():
            fail(f"tensor {name!r} is {t.dtype}; expected real (floating-point or integer) "
                 f"values")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise BincountError(f"{where}: tensor {name!r} holds NaN or infinite values; "
                                f"expected finite weights (the run diverged or the file is "
                                f"damaged)")
    return ckpt


def _short(v):
    text = repr(v) if isinstance(v, (bool, int, float, str, type(None))) else \
        f"a {type(v).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def load_checkpoint(path, option="checkpoint", training=False):
    """The one reader of bincount checkpoints (``eval``, ``export``, ``convert-ptq``,
    ``train --resume`` / ``--from-baseline``): ``torch.load(weights_only=True)`` onto the
    CPU, then :func:`check_checkpoint`. :class:`BincountError` ``"{option} 'PATH': ..."`` for
    a missing, unreadable, foreign or malformed file; nothing is ever unpickled."""
    path = Path(path)
    where = f"{option} {str(path)!r}"
    kind = file_kind(path)
    texts = {"missing": "does not exist", "directory": "is a directory, not a file",
             "other": "is not a regular file", "unreadable": "cannot be read (permission denied)",
             "empty": "is empty (0 bytes)",
             "data": "is not a readable bincount checkpoint (not a zip archive, as torch.save "
                     "writes)"}
    if kind in texts:
        raise BincountError(f"{where} {texts[kind]}; {_EXPECTED}")
    if kind == "zip":        # torch's reader does not check the members' CRC-32
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except Exception as exc:  # truncation, a damaged deflate stream, an encrypted member
            kind_of = f"{type(exc).__module__}.{type(exc).__name__}"    # zlib.error, ...
            raise BincountError(f"{where} is not a readable bincount checkpoint: a damaged or "
                                f"foreign zip archive ({kind_of}); {_EXPECTED}") from None
        if bad is not None:
            raise BincountError(f"{where} is damaged: its member {bad} fails its CRC-32 "
                                f"check; {_EXPECTED}")
    try:
        with warnings.catch_warnings():    # torch's warnings on foreign files: the error says it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises loading without weights_only: never done here
        raise BincountError(f"{where} is not a readable bincount checkpoint: it holds Python "
                            f"objects other than tensors and plain data, which bincount "
                            f"refuses to unpickle; {_EXPECTED}") from None
    except Exception as exc:  # zip, truncation, storage and other load errors
        raise BincountError(f"{where} is not a readable bincount checkpoint: a damaged or "
                            f"foreign {'zip archive' if kind == 'zip' else 'pickle stream'} "
                            f"({type(exc).__name__}); {_EXPECTED}") from None
    return check_checkpoint(ckpt, where, training=training)


def _load_state(model, state, where):
    own = model.state_dict()
    for name, t in state.items():   # load_state_dict would cast integer weights to float
        if name in own and t.is_floating_point() != own[name].is_floating_point():
            raise BincountError(f"{where}: tensor {name!r} is {t.dtype}; the network's is "
                                f"{own[name].dtype}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BincountError(f"{where}: weights do not fit the network ({' '.join(first[:2])[:300]})"
                            ) from None


def _build_checked(network, variant, width_mult, flags, where):
    try:
        return build_model(network, variant, width_mult, flags)
    except BincountError as exc:
        raise BincountError(f"{where}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise BincountError(f"{where}: network {network!r} variant {variant!r} width "
                            f"{width_mult!r} flags {flags!r} do not build a network "
                            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") \
            from None


def load_model(checkpoint, option="--checkpoint"):
    """A network in eval mode from a checkpoint file (or an already loaded dict), read by the
    one checkpoint reader (:func:`load_checkpoint`: ``weights_only=True``, every field
    checked), as ``eval``, ``export`` and ``convert-ptq`` use it."""
    if isinstance(checkpoint, dict):
        return model_from_checkpoint(check_checkpoint(checkpoint, "checkpoint"), "cpu",
                                     where="checkpoint")
    ckpt = load_checkpoint(checkpoint, option)
    return model_from_checkpoint(ckpt, "cpu", where=f"{option} {str(checkpoint)!r}")


def model_from_checkpoint(ckpt, device="cpu", where="checkpoint"):
    """The network of a loaded checkpoint with its weights, in eval mode, on ``device``."""
    flags = ckpt.get("flags")
    full = ckpt.get("network_config")
    if isinstance(full, dict) and full:     # every flag filled in when it was saved
        flags = {k: v for k, v in full.items() if k not in ("network", "variant", "width_mult")}
    model = _build_checked(ckpt["network"], ckpt["variant"], ckpt["width_mult"], flags, where)
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
          channels_last=False, compiled=False):
    """Train (or resume) a run; returns the checkpoint dict of the last completed epoch.

    ``given``: settings (keys of :data:`DEFAULTS`, ``None`` = not given). ``checkpoint``: the
    file written after every epoch, with its ``.json`` summary beside it (``--resume`` reads it
    first). ``stop_after``: stop after that many epochs of this invocation (the run can be
    resumed later). Both outputs are checked before any work, and the checkpoint is locked for
    the whole run: a second run on the same checkpoint is refused while the first one runs.
    ``amp``: see :func:`resolve_amp`. ``channels_last``: model and batches in that memory
    format (about 10 % faster convolutions on the CPU, but BN reduces its statistics in another
    order, so the run differs from the default one by float rounding; off by default).
    ``compiled``: the training step's network through ``torch.compile`` (inductor: the
    elementwise work fused into generated kernels; the first step compiles, about 1.5 minutes
    on the CPU; results equal the default run's up to float rounding; off by default).

    Launched by ``torchrun`` (``WORLD_SIZE > 1``), every process trains a
    ``DistributedDataParallel`` copy on its shard of each epoch (``Batches(rank, world)``,
    ``batch_size`` images per process and step); rank 0 alone evaluates, logs and writes the
    checkpoint; every rank returns a checkpoint dict with the same weights and figures.
    """
    checkpoint = file_path("--checkpoint", checkpoint, "build/train/checkpoint.pt")
    if checkpoint.suffix == ".json":
        raise BincountError(f"--checkpoint {str(checkpoint)!r} ends in .json, the suffix of its "
                            f"summary file; expected a name such as checkpoint.pt")
    args = (given, checkpoint, resume, force, device, threads, data_dir, stop_after, progress,
            log, amp, channels_last, compiled)
    owns_group = dist.is_available() and not dist.is_initialized()
    try:
        if distributed_env()[0] != 0:  # torchrun: rank 0 alone writes, checks and locks
            return _train(*args)
        # existing files are --resume's or --force's business (below, under the lock)
        check_outputs([("--checkpoint", checkpoint),
                       ("--checkpoint summary", checkpoint.with_suffix(".json"))], force=True)
        with output_lock(checkpoint, "--checkpoint"):
            return _train(*args)
    finally:
        # a process group left to the interpreter's exit can abort it (gloo's threads are
        # still joinable: "terminate called without an active exception")
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(given, checkpoint, resume, force, device, threads, data_dir, stop_after, progress,
           log, amp, channels_last, compiled):
    stored = None
    if resume:
        stored = load_checkpoint(checkpoint, "--checkpoint", training=True)
    elif checkpoint.exists() and not force:
        raise BincountError(f"checkpoint {str(checkpoint)!r} already exists; pass --resume to "
                            f"continue that run or --force to start a new one over it")
    if stored:    # a resumed run takes every setting from the file: a bad one is the file's
        try:
            resolve_config({}, stored["config"])
        except BincountError as exc:
            raise BincountError(f"--checkpoint {str(checkpoint)!r}: its recorded settings: "
                                f"{exc} (a damaged or foreign checkpoint, or one written by "
                                f"another bincount version)") from None
    cfg = resolve_config(given, stored["config"] if stored else None)
    if stop_after is not None and stop_after < 1:
        raise BincountError(f"stop-after must be at least 1, got {stop_after!r}")
    if threads is not None and (not _integer(threads) or not 1 <= threads <= 1024):
        raise BincountError(f"threads must be an integer in 1..1024, got {threads!r}")
    rank, world, dev = _init_distributed(device)
    amp_dtype = resolve_amp(amp, dev)
    if rank != 0:
        log, progress = (lambda msg: None), False
    if threads:
        torch.set_num_threads(int(threads))
    if stored is not None and stored.get("done") and stored["epoch"] >= cfg["epochs"]:
        log(f"run in {str(checkpoint)!r} is complete ({stored['epoch']} epochs); nothing to do")
        return stored

    # the network and every input before the data and the work
    torch.manual_seed(cfg["seed"])
    model = _build_checked(cfg["network"], cfg["variant"], cfg["width_mult"], cfg["flags"],
                           "training settings")
    if stored is None and cfg["from_baseline"]:
        base = load_checkpoint(cfg["from_baseline"], "--from-baseline")
        if (base["network"], float(base["width_mult"])) != (cfg["network"],
                                                              float(cfg["width_mult"])):
            raise BincountError(f"--from-baseline {cfg['from_baseline']!r} is a "
                                f"{base['network']} at width {base['width_mult']}; this run is "
                                f"a {cfg['network']} at width {cfg['width_mult']}")
        _load_state(model, base["model"], f"--from-baseline {cfg['from_baseline']!r}")

    # data next: a missing or malformed data set fails before anything is written
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
        ph = _phase_of(plan, start_epoch)
        try:
            _set_rng_state(stored.get("rng"))
            if start_epoch > 0 and _phase_of(plan, start_epoch - 1) == ph:
                name, _, _, binw, wd = plan[ph]
                set_binary_weights(model, binw)
                optimizer = make_optimizer(model, cfg["lr"], wd)
                optimizer.load_state_dict(stored["optimizer"])
                opt_phase = ph
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise BincountError(f"--checkpoint {str(checkpoint)!r}: its optimizer or random "
                                f"generator state does not fit the run "
                                f"({type(exc).__name__}); expected a checkpoint written by "
                                f"'bincount train' for these settings") from None
        log(f"resuming {str(checkpoint)!r} after epoch {start_epoch}/{cfg['epochs']}")

    net = model                        # the network; `model` is its DDP wrapper in a torchrun
    if world > 1:
        model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda"
                                        else None, find_unused_parameters=True)
    # the step runs the compiled module; `net` (same parameters and buffers) is evaluated and
    # saved, so the checkpoint's keys are the network's own
    step_model = torch.compile(model) if compiled else model
    desc = (f"{cfg['network']} {cfg['variant']} w{cfg['width_mult']:g}: {len(idx)} train "
            f"images, {steps} steps/epoch, {cfg['epochs']} epochs ({cfg['schedule']}), "
            f"device {dev}, {torch.get_num_threads()} threads"
            + (f", {world} processes x {cfg['batch_size']} images per step" if world > 1 else "")
            + (f", autocast {str(amp_dtype).replace('torch.', '')}" if amp_dtype else "")
            + (", torch.compile (the first step compiles)" if compiled else ""))
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
                logits, loss = train_step(step_model, optimizer, x, y, lr, amp_dtype, scaler)
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

