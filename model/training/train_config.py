"""Settings of a training run and their defaults (torch-free, for the command line)."""

__all__ = ["FORMAT", "VERSION", "NETWORKS", "SCHEDULES", "DEFAULTS", "RUN_KEYS", "LIMITS"]

FORMAT = "bincount-checkpoint"
VERSION = 1
NETWORKS = ("reactnet18", "birealnet18")
SCHEDULES = ("cosine", "two-step")

#: Settings of a run and their defaults (``None``: not limited / not used).
DEFAULTS = {
    "network": "reactnet18",
    "variant": "baseline",
    "width_mult": 1.0,
    "flags": {},
    "epochs": 200,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 5e-6,
    "schedule": "cosine",
    "train_limit": None,
    "eval_limit": None,
    "seed": 0,
    "from_baseline": None,
}
#: Settings that define a run: a resumed run must not change them.
RUN_KEYS = tuple(DEFAULTS)
#: Largest accepted values (beyond them a run cannot fit any machine, or is a typo).
LIMITS = {
    "epochs": 100000,
    "batch_size": 50000,        # the CIFAR-10 training set
    "seed": 2**32 - 1,
    "lr": 10.0,
    "weight_decay": 1.0,
    "width_mult": 8.0,
}
