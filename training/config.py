"""Training configuration: frozen dataclasses, one per concern, read from a TOML file.

A config file has up to five tables, each optional, each field defaulting to the value below::

    [model]            network = "acr" | "dir", plus any ACRConfig / DIRConfig field
    [data]             kind, root, split, val_root, val_split, size, augment
    [optim]            optimizer, lr, weight_decay, schedule, milestones, gamma, t_max, ...
    [train]            epochs, max_steps, batch_size, amp, grad_clip, seed, ...
    [loss]             seg_epochs and any ACRLossWeights / DIRLossWeights field

Unknown tables and keys are errors (a typo must not silently train something else). Paths in
the file are relative to the file. ``configs/`` holds the tested ones.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handmocap.core.errors import HandmocapError

NETWORKS = ("acr", "dir")
DATA_KINDS = ("synthetic", "interhand", "freihand")
SCHEDULES = ("constant", "step", "cosine")
AMP_MODES = ("off", "bf16", "fp16")
AUGMENT_PRESETS = ("auto", "acr", "dir", "none")


@dataclass(frozen=True)
class ModelConfig:
    network: str = "acr"
    options: dict = field(default_factory=dict)  # ACRConfig / DIRConfig fields

    def network_config(self):
        """The ``ACRConfig`` or ``DIRConfig`` this describes."""
        if self.network == "acr":
            from handmocap.core.acr.model import ACRConfig as cls
        else:
            from handmocap.core.dir.model import DIRConfig as cls
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(self.options) - names)
        if unknown:
            raise HandmocapError(f"[model] has unknown {self.network} options: {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.options.items()}
        return cls(**values)


@dataclass(frozen=True)
class DataConfig:
    kind: str = "synthetic"
    root: str = ""
    split: str = "train"  # the reader's split name (synthetic: ignored)
    val_root: str = ""  # empty: hold out ``val_fraction`` of ``root``
    val_split: str = "val"
    val_fraction: float = 0.05
    size: int = 0  # square sample size; 0: the network's input size
    augment: str = "auto"  # "auto" (the network's paper), "acr", "dir" or "none"
    workers: int = 0


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # "adam" (ACR) or "adamw" (DIR)
    lr: float = 3e-4
    weight_decay: float = 0.0
    eps: float = 1e-8  # Adam's epsilon
    schedule: str = "step"  # "step": x gamma at each milestone epoch; "cosine": to 0 over t_max
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    t_max: int = 0  # epochs of the cosine; 0: train.epochs
    warmup_steps: int = 0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    max_steps: int = 0  # 0: no limit other than epochs
    batch_size: int = 8
    amp: str = "off"
    grad_clip: float = 0.0  # max gradient norm, 0: off
    seed: int = 0
    device: str = "auto"
    freeze_bn: bool = False  # batch norm in eval mode (its statistics fixed)
    log_every: int = 10
    checkpoint_every: int = 0  # steps; 0: at the end of every epoch only
    val_every: int = 0  # steps; 0: at the end of every epoch only
    val_samples: int = 0  # 0: the whole validation set
    threads: int = 0  # torch CPU threads per process, 0: torch's default


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples), as checkpoints store it."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> Config:
        unknown = sorted(set(data) - {"model", "data", "optim", "train", "loss"})
        if unknown:
            raise HandmocapError(f"unknown config tables: {unknown}")
        model = dict(data.get("model", {}))
        network = model.pop("network", "acr")
        options = model.pop("options", {})
        model_config = ModelConfig(network=network, options={**options, **model})
        config = cls(
            model=model_config,
            data=_table(DataConfig, data.get("data", {}), "data"),
            optim=_table(OptimConfig, data.get("optim", {}), "optim"),
            train=_table(TrainConfig, data.get("train", {}), "train"),
            loss=dict(data.get("loss", {})),
        )
        if base is not None:
            config = config.with_paths_from(base)
        config.check()
        return config

    def with_paths_from(self, base: Path) -> Config:
        """Data paths relative to ``base`` (the config file's folder) made absolute."""

        def resolve(p: str) -> str:
            return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

        data = dataclasses.replace(
            self.data, root=resolve(self.data.root), val_root=resolve(self.data.val_root)
        )
        return dataclasses.replace(self, data=data)

    def check(self) -> None:
        """Raise HandmocapError naming the first setting that cannot work."""
        checks = [
            (self.model.network in NETWORKS, f"model.network must be one of {NETWORKS}"),
            (self.data.kind in DATA_KINDS, f"data.kind must be one of {DATA_KINDS}"),
            (self.optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}"),
            (self.optim.optimizer in ("adam", "adamw"), "optim.optimizer must be adam or adamw"),
            (self.train.amp in AMP_MODES, f"train.amp must be one of {AMP_MODES}"),
            (self.train.batch_size > 0, "train.batch_size must be positive"),
            (self.train.epochs > 0, "train.epochs must be positive"),
            (self.optim.lr > 0, "optim.lr must be positive"),
            (0 <= self.data.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
            (self.data.augment in AUGMENT_PRESETS, f"data.augment must be in {AUGMENT_PRESETS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise HandmocapError(message)
        self.model.network_config()


def _table(cls, values: dict, name: str):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise HandmocapError(f"[{name}] has unknown keys: {unknown} (known: {sorted(names)})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_config(path: Path | str) -> Config:
    """Read a TOML config file; errors name the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HandmocapError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HandmocapError(f"{path} is not a valid TOML file: {exc}") from None
    try:
        return Config.from_dict(data, base=path.parent)
    except (TypeError, ValueError) as exc:
        raise HandmocapError(f"{path}: {exc}") from None
    except HandmocapError as exc:
        raise HandmocapError(f"{path}: {exc}") from None
