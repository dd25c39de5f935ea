"""One trainer for both networks: config in, checkpoints, logs and a training record out.

``train(config, out_dir)`` runs the loop; under ``torchrun`` it trains data-parallel (NCCL on
GPUs, gloo on CPUs), each process taking its part of every global batch. What it writes in
``out_dir``:

  last.pt        the latest checkpoint (weights, optimizer, step, RNG states, config, hand
                 model id, training record); written atomically, resumed from automatically
  best.pt        the checkpoint with the lowest validation MPJPE so far
  train.csv      one row per logged step: step, epoch, lr, loss terms, seconds per step
  val.csv        one row per validation: step, epoch, metrics
  tensorboard/   the same as TensorBoard event files
  config.toml    a copy of the config the run started with

Resuming after a crash continues bit-identically: the batch order and every sample's
augmentation depend only on (seed, epoch, index), the learning rate is a pure function of the
step, and the checkpoint holds the optimizer and RNG states.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handmocap.core.checkpoints import PROJECT_FORMAT
from handmocap.core.errors import HandmocapError
from handmocap.training.config import Config, OptimConfig
from handmocap.training.data import BatchOrder, TrainingSet, split_datasets
from handmocap.training.tasks import Task, build_model, build_task, input_size

CHECKPOINT_FORMAT = PROJECT_FORMAT  # core reads what the trainer writes
LAST, BEST = "last.pt", "best.pt"


def learning_rate(optim: OptimConfig, epoch: float, step: int, epochs: int) -> float:
    """The schedule as a pure function: ``epoch`` may be fractional (cosine), ``step`` counts
    optimizer steps (warm-up). "step": ACR's x gamma at each milestone epoch; "cosine": DIR's
    CosineAnnealingLR stepped per epoch (t_max epochs, to 0)."""
    lr = optim.lr
    if optim.schedule == "step":
        lr *= optim.gamma ** sum(int(epoch) >= m for m in optim.milestones)
    elif optim.schedule == "cosine":
        t_max = optim.t_max or epochs
        lr *= 0.5 * (1 + math.cos(math.pi * min(int(epoch), t_max) / t_max))
    if optim.warmup_steps and step < optim.warmup_steps:
        lr *= (step + 1) / optim.warmup_steps
    return lr


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_kind: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        backend = "nccl" if device_kind == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def stop(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    epoch: int
    record: list[dict] = field(default_factory=list)


def pick_device(name: str, dist: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise HandmocapError("train.device is cuda but no CUDA device is available")
        return torch.device("cuda", dist.local_rank)
    return torch.device(name)


def freeze_batch_norm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically: a crash while writing leaves the previous file intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """A project checkpoint, read without running code (``weights_only``)."""
    from handmocap.core.checkpoints import read_project_checkpoint

    return read_project_checkpoint(path)


class Trainer:
    """The loop. ``Trainer(config, out_dir).run()``; ``max_steps`` overrides the config's."""

    def __init__(
        self,
        config: Config,
        out_dir: Path,
        progress: bool = True,
        models_dir: Path | None = None,
        datasets: tuple | None = None,
    ):
        """``datasets``: (train, validation) sample datasets instead of the config's data."""
        from handmocap.core.handmodel import HandLayer, load_hand_models

        self.config = config
        self.out = Path(out_dir)
        self.progress = progress
        t = config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        cuda = t.device in ("cuda", "auto") and torch.cuda.is_available()
        self.dist = Distributed.start("cuda" if cuda else "cpu")
        self.device = pick_device(t.device, self.dist)
        if t.amp == "fp16" and self.device.type != "cuda":
            raise HandmocapError("train.amp = fp16 needs a CUDA device (use bf16 on CPUs)")
        torch.manual_seed(t.seed)  # the same initial weights in every process
        self.hand_models = load_hand_models(models_dir, "auto" if models_dir else "openhand")
        self.hand_layer = HandLayer(self.hand_models).to(self.device)
        self.model = build_model(config, self.hand_models).to(self.device)
        self.task: Task = build_task(config, self.model, self.hand_layer)
        self.task.loss.to(self.device)
        self.size = config.data.size or input_size(config)
        train, val = datasets or split_datasets(config, self.size, self.hand_models)
        self.train_set = TrainingSet(
            train, self.task.add_targets, self.augment_config(), self.hand_layer_cpu(), t.seed
        )
        self.val_set = TrainingSet(val, self.task.add_targets)
        if len(self.train_set) < t.batch_size:
            raise HandmocapError(
                f"{len(self.train_set)} training samples, fewer than one batch of {t.batch_size}"
            )
        params = [p for p in self.model.parameters() if p.requires_grad]
        o = config.optim
        opt = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt(params, lr=o.lr, weight_decay=o.weight_decay, eps=o.eps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16")
        self.net = self.model
        if self.dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.record: list[dict] = []
        self.best = math.inf

    def augment_config(self):
        name = self.config.data.augment
        if name == "none":
            return None
        from handmocap.training.augment import AugmentConfig

        name = self.config.model.network if name == "auto" else name
        return AugmentConfig.acr() if name == "acr" else AugmentConfig.dir()

    def hand_layer_cpu(self):
        """The hand layer augmentation poses with (in the data loader's processes: on the CPU)."""
        from handmocap.core.handmodel import HandLayer

        return self.hand_layer if self.device.type == "cpu" else HandLayer(self.hand_models)

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "network": self.config.model.network,
            "network_config": dataclasses.asdict(self.config.model.network_config()),
            "config": self.config.to_dict(),
            "hand_model_id": {s: m.model_id for s, m in self.hand_models.items()},
            "hand_model_kind": self.hand_models["right"].kind,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "record": self.record,
            "rng": {"torch": torch.get_rng_state()}
            | ({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}),
            "versions": {"torch": str(torch.__version__), "python": sys.version.split()[0]},
        }

    def resume(self, path: Path) -> None:
        state = load_checkpoint(path)
        mine = self.config.to_dict()
        for table in ("model", "data", "optim", "loss"):
            if state["config"].get(table) != mine.get(table):
                raise HandmocapError(
                    f"{path} was trained with a different [{table}] config; "
                    f"use a new output folder or the same config"
                )
        if state["hand_model_id"] != {s: m.model_id for s, m in self.hand_models.items()}:
            raise HandmocapError(f"{path} was trained with another hand model")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.best = state["batch_in_epoch"], state["best"]
        self.record = list(state["record"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def save(self, name: str = LAST) -> None:
        if self.dist.main:
            save_checkpoint(self.out / name, self.state())

    # -- the loop ------------------------------------------------------------------------------

    def loader(self, dataset, order: BatchOrder):
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=order,
            num_workers=self.config.data.workers,
            pin_memory=self.device.type == "cuda",
        )

    def autocast(self):
        amp = self.config.train.amp
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=amp != "off")

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def train_step(self, batch: dict) -> dict[str, float]:
        """One readable step: forward, named losses, backward, clip, optimizer."""
        t = self.config.train
        lr = learning_rate(self.config.optim, self.epoch, self.step, t.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        if t.freeze_bn:
            freeze_batch_norm(self.net)
        with self.autocast():
            output = self.net(self.task.inputs(batch))
        losses = self.task.losses(output, batch, self.epoch)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise HandmocapError(
                f"the loss is not finite at step {self.step}: "
                + ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        grad_norm = float("nan")
        if t.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        row = {k: float(v.detach()) for k, v in losses.items()}
        row.update(loss=float(total.detach()), lr=lr, grad_norm=grad_norm)
        return row

    def run(self, max_steps: int | None = None, resume: bool = True) -> TrainResult:
        t = self.config.train
        max_steps = t.max_steps if max_steps is None else max_steps
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and (self.out / LAST).exists():
            self.resume(self.out / LAST)
            self.log(f"resumed from {self.out / LAST} at step {self.step} (epoch {self.epoch})")
        logs = Logs(self.out, self.step) if self.dist.main else None
        per_epoch = len(self.train_set) // t.batch_size
        total = t.epochs * per_epoch if not max_steps else min(max_steps, t.epochs * per_epoch)
        bar = self.progress_bar(total)
        try:
            while self.epoch < t.epochs and self.step < total:
                self.train_set.epoch = self.epoch
                order = BatchOrder(len(self.train_set), t.batch_size, t.seed, self.epoch,
                                   self.dist.rank, self.dist.world,
                                   self.batch_in_epoch)  # fmt: skip
                for batch in self.loader(self.train_set, order):
                    started = time.perf_counter()
                    row = self.train_step(self.to_device(batch))
                    self.step += 1
                    self.batch_in_epoch += 1
                    row.update(step=self.step, epoch=self.epoch,
                               seconds=time.perf_counter() - started)  # fmt: skip
                    if logs and (self.step % t.log_every == 0 or self.step == 1):
                        logs.train(row)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{row['loss']:.3g}", lr=f"{row['lr']:.2g}")
                    if t.val_every and self.step % t.val_every == 0:
                        self.validate(logs)
                    if t.checkpoint_every and self.step % t.checkpoint_every == 0:
                        self.save()
                    if self.step >= total:
                        break
                if self.batch_in_epoch >= per_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    if not t.val_every:
                        self.validate(logs)
                self.save()
        finally:
            if bar is not None:
                bar.close()
            if logs:
                logs.close()
        self.dist.barrier()
        self.dist.stop()
        return TrainResult(self.out, self.step, self.epoch, self.record)

    def progress_bar(self, total: int):
        if not (self.progress and self.dist.main):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", file=sys.stderr,
                    desc=f"train {self.config.model.network}", dynamic_ncols=True)  # fmt: skip

    def log(self, message: str) -> None:
        if self.dist.main and self.progress:
            print(message, file=sys.stderr)

    @torch.no_grad()
    def validate(self, logs) -> dict | None:
        """Metrics on the validation set (the main process; the others wait)."""
        metrics = None
        if self.dist.main and len(self.val_set):
            from handmocap.training.evaluate import evaluate_task

            limit = self.config.train.val_samples or None
            metrics = evaluate_task(self.task, self.val_set, self.device,
                                    self.config.train.batch_size, self.autocast,
                                    limit=limit)  # fmt: skip
            row = {"step": self.step, "epoch": self.epoch, **metrics}
            self.record.append(row)
            if logs:
                logs.val(row)
            score = metrics.get("mpjpe", math.inf)
            if score < self.best:
                self.best = score
                save_checkpoint(self.out / BEST, self.state())
        self.dist.barrier()
        return metrics


class Logs:
    """CSV files and TensorBoard events; resuming drops rows past the checkpoint's step."""

    def __init__(self, out: Path, step: int):
        from tensorboardX import SummaryWriter

        self.files = {name: out / f"{name}.csv" for name in ("train", "val")}
        for path in self.files.values():
            if path.exists():
                rows = [r for r in read_csv(path) if int(float(r["step"])) <= step]
                write_csv(path, rows)
        self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1 if step else None)

    def append(self, path: Path, row: dict) -> None:
        header = read_header(path)
        if header is not None and set(row) <= set(header):
            with path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=header, restval="").writerow(row)
        else:  # a new file, or a new column (a loss term switched on): rewrite it wider
            write_csv(path, (read_csv(path) if header is not None else []) + [row])

    def train(self, row: dict) -> None:
        self.append(self.files["train"], row)
        for k, v in row.items():
            if k not in ("step", "epoch") and np.isfinite(v):
                self.tb.add_scalar(f"train/{k}", v, row["step"])

    def val(self, row: dict) -> None:
        self.append(self.files["val"], row)
        for k, v in row.items():
            if k not in ("step", "epoch") and isinstance(v, float) and np.isfinite(v):
                self.tb.add_scalar(f"val/{k}", v, row["step"])

    def close(self) -> None:
        self.tb.close()


def read_header(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    with path.open(newline="") as f:
        return next(csv.reader(f), [])


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict]) -> None:
    header = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def train(config: Config, out_dir: Path, max_steps: int | None = None, resume: bool = True,
          progress: bool = True) -> TrainResult:  # fmt: skip
    """Train as ``config`` says into ``out_dir`` (resuming from ``out_dir/last.pt``)."""
    return Trainer(config, out_dir, progress=progress).run(max_steps=max_steps, resume=resume)
