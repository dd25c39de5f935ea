"""Datasets as the trainer sees them: the configured reader, augmented, with the task's targets,
in a batch order that depends only on (seed, epoch), so that a resumed run sees exactly the
batches the uninterrupted run would have seen and N processes together see what one does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from handmocap.core.errors import HandmocapError
from handmocap.training.config import Config


class TrainingSet(Dataset):
    """A reader's samples, augmented with a generator seeded by (seed, epoch, index)."""

    def __init__(
        self,
        samples: Dataset,
        add_targets: Callable[[dict], dict],
        augment=None,
        hand_layer=None,
        seed: int = 0,
    ):
        self.samples = samples
        self.add_targets = add_targets
        self.augment = augment  # an AugmentConfig, or None
        self.hand_layer = hand_layer
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        sample = self.samples[index]
        if self.augment is not None:
            from handmocap.training.augment import augment

            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            sample = augment(sample, self.augment, rng, hand_layer=self.hand_layer)
        return self.add_targets(sample)


class BatchOrder(torch.utils.data.Sampler):
    """Index lists for one process: the epoch's permutation cut into global batches, each cut
    into ``world`` equal parts; rank ``r`` gets part ``r``. Incomplete last batches are dropped.
    ``start`` skips batches already trained (resume)."""

    def __init__(self, size: int, batch: int, seed: int, epoch: int, rank=0, world=1, start=0):
        if batch % world:
            raise HandmocapError(f"batch size {batch} does not split over {world} processes")
        self.size, self.batch, self.seed, self.epoch = size, batch, seed, epoch
        self.rank, self.world, self.start = rank, world, start

    def __len__(self) -> int:
        return max(self.size // self.batch - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.size)
        part = self.batch // self.world
        for b in range(self.start, self.size // self.batch):
            chunk = order[b * self.batch : (b + 1) * self.batch]
            yield chunk[self.rank * part : (self.rank + 1) * part].tolist()


def open_dataset(kind: str, root: str, split: str, size: int, hand_models=None) -> Dataset:
    """The reader for ``kind`` at ``root``; errors name the folder. ``hand_models`` (real MANO,
    both sides) let the real datasets' MANO fits become labels (else ``params_valid`` is 0)."""
    if not root:
        raise HandmocapError(f"no data folder given for the {kind} dataset (data.root)")
    if not Path(root).exists():
        raise HandmocapError(f"data folder not found: {root}")
    if kind == "synthetic":
        from handmocap.training.datasets.synthetic import SyntheticDataset

        dataset = SyntheticDataset(Path(root))
        if size and dataset.size != size:
            raise HandmocapError(
                f"{root} holds {dataset.size} px samples, the network wants {size} px: "
                f"generate the data at {size} (handmocap data synth --size {size})"
            )
        return dataset
    if kind == "interhand":
        from handmocap.training.datasets.interhand import InterHandDataset

        return InterHandDataset(Path(root), split=split, size=size, hand_models=mano(hand_models))
    if kind == "freihand":
        from handmocap.training.datasets.freihand import FreiHANDDataset

        return FreiHANDDataset(Path(root), split=split, size=size, hand_models=mano(hand_models))
    raise HandmocapError(f"unknown dataset kind {kind!r}")


def mano(hand_models):
    """The hand models if they are real MANO (the datasets' fits are MANO's), else None."""
    if hand_models and all(m.kind == "mano" for m in hand_models.values()):
        return hand_models
    return None


def split_datasets(config: Config, size: int, hand_models=None) -> tuple[Dataset, Dataset]:
    """(train, validation) datasets: ``val_root`` when given, else the last ``val_fraction``."""
    d = config.data
    train = open_dataset(d.kind, d.root, d.split, size, hand_models)
    if d.val_root:
        return train, open_dataset(d.kind, d.val_root, d.val_split, size, hand_models)
    n = len(train)
    held = int(np.ceil(n * d.val_fraction)) if d.val_fraction > 0 else 0
    if held >= n:
        raise HandmocapError(f"{d.root} has {n} samples: too few to hold out {held}")
    return Subset(train, range(n - held)), Subset(train, range(n - held, n))
