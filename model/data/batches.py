"""In-memory CIFAR-10 batches: seeded shuffling, standard augmentation, normalisation.

:class:`Batches` holds a split as one uint8 tensor ``[K, 3, 32, 32]`` and yields float batches
``(x [B, 3, 32, 32], y [B])`` on the chosen device:

* training (``augment=True``): a fresh order every epoch, random 32x32 crops of the image padded
  by 4 black pixels on each side, and horizontal flips with probability 1/2 (the usual CIFAR
  recipe, as torchvision's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip``);
* evaluation: file order, no augmentation.

Both use ``(pixel / 255 - MEAN) / STD`` with the CIFAR-10 means and standard deviations of
:mod:`bincount.model.data.cifar`. The randomness of epoch ``e`` comes only from ``(seed, e)``
(``numpy.random.default_rng([seed, e])``), so a run resumed at an epoch boundary sees exactly
the batches an uninterrupted run would.
"""

import numpy as np
import torch

from bincount.errors import BincountError
from bincount.model.data.cifar import MEAN, STD

__all__ = ["Batches", "PAD", "subset_indices"]

PAD = 4


def subset_indices(labels, limit, seed):
    """``limit`` indices of ``labels``, drawn from ``seed`` and balanced over the classes
    (round-robin over a seeded shuffle), returned sorted; all indices if ``limit`` is None."""
    labels = np.asarray(labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    if limit < 1:
        raise BincountError(f"a subset needs at least 1 image, got {limit}")
    perm = np.random.default_rng([int(seed), 0x5EB5E7]).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = perm[labels[perm] == c]
        rank[members] = np.arange(len(members))
    order = perm[np.argsort(rank[perm], kind="stable")]
    return np.sort(order[:limit])


class Batches:
    """Batches of one split held in memory.

    Parameters
    ----------
    images : uint8 array ``[K, 32, 32, 3]`` (RGB, as :func:`bincount.model.data.cifar.load_split`)
    labels : int array ``[K]``
    batch_size : int
    augment : bool
        Shuffle, random crop (padding 4) and horizontal flip; else file order, no augmentation.
    seed : int
    device : str or torch.device
    drop_last : bool
        Drop a final partial batch (default: ``augment``; BN statistics of a tiny last
        training batch are noisy).
    rank, world : int
        Shard of a data-parallel run (``torch.distributed``): every rank draws the same epoch
        order and takes the images ``order[rank::world]`` (the first ``K // world`` of them, so
        every rank has the same number of batches), as ``DistributedSampler`` does; each rank
        augments with its own generator ``(seed, epoch, 1 + rank)``. ``world == 1`` (default) is
        the unsharded iterator, unchanged.
    memory_format : torch.memory_format
        Of the yielded images (``torch.channels_last`` for the training path).
    """

    def __init__(self, images, labels, batch_size, augment=False, seed=0, device="cpu",
                 drop_last=None, rank=0, world=1, memory_format=torch.contiguous_format):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise BincountError(f"images must be uint8 [K, 32, 32, 3], got {images.dtype} "
                                f"{images.shape}")
        if len(labels) != len(images):
            raise BincountError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise BincountError(f"batch size must be at least 1, got {batch_size}")
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.rank, self.world = int(rank), int(world)
        if not 0 <= self.rank < self.world:
            raise BincountError(f"rank {rank} outside a world of {world}")
        self.memory_format = memory_format
        self.drop_last = self.augment if drop_last is None else bool(drop_last)
        if self.drop_last and self.shard_size < self.batch_size:
            self.drop_last = False          # a tiny set still gives one batch
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(STD, device=self.device).view(1, 3, 1, 1) * 255.0)

    @property
    def shard_size(self):
        """Images of this rank per epoch before batching (all of them for ``world == 1``)."""
        return len(self.images) // self.world if self.world > 1 else len(self.images)

    def __len__(self):
        n = self.shard_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self):
        """Images this rank sees per epoch (after ``drop_last``)."""
        return min(self.shard_size, len(self) * self.batch_size)

    def normalize(self, xb):
        """uint8 ``[B, 3, 32, 32]`` on the device -> normalised float32."""
        return (xb.float() - self._mean) * self._inv_std

    def _augment(self, xb, rng):
        b = xb.shape[0]
        padded = torch.nn.functional.pad(xb, [PAD] * 4)          # black border, as torchvision
        oy = torch.from_numpy(rng.integers(0, 2 * PAD + 1, b))
        ox = torch.from_numpy(rng.integers(0, 2 * PAD + 1, b))
        flip = torch.from_numpy(rng.random(b) < 0.5)
        ar = torch.arange(32)
        size = 32 + 2 * PAD
        rows = (oy[:, None] + ar).view(b, 1, 32, 1).expand(b, 3, 32, size)
        cols = (ox[:, None] + torch.where(flip[:, None], 31 - ar, ar)).view(b, 1, 1, 32)
        return padded.gather(2, rows).gather(3, cols.expand(b, 3, 32, 32))

    def epoch(self, epoch=0):
        """Iterate ``(x, y)`` for epoch ``epoch`` (its order and augmentation depend only on
        ``(seed, epoch)``)."""
        n = len(self.images)
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = torch.from_numpy(rng.permutation(n)) if self.augment else torch.arange(n)
        if self.world > 1:
            order = order[self.rank::self.world][:self.shard_size]
            rng = np.random.default_rng([self.seed, int(epoch), 1 + self.rank])
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            xb = self.images[idx]
            if self.augment:
                xb = self._augment(xb, rng)
            xb = xb.to(self.device, non_blocking=True)
            x = self.normalize(xb)
            if self.memory_format is not torch.contiguous_format:
                x = x.contiguous(memory_format=self.memory_format)
            yield x, self.labels[idx].to(self.device, non_blocking=True)

    __iter__ = epoch
