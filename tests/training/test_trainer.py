"""The trainer: a tiny config lowers the loss, resume is bit-identical, logs and checkpoints."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from toydata import PosedHands

from handmocap.core.errors import HandmocapError
from handmocap.training.config import Config, OptimConfig, load_config
from handmocap.training.trainer import LAST, Trainer, learning_rate, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_ACR = {
    "network": "acr",
    "hrnet_width": 8,
    "hrnet_stage_modules": [1, 1, 1],
    "hrnet_blocks": 1,
    "head_width": 16,
    "head_blocks": 1,
    "part_dim": 32,
    "input_size": 128,
}


def tiny_config(**tables) -> Config:
    data = {
        "model": dict(TINY_ACR),
        "data": {"augment": "none"},
        "train": {"batch_size": 4, "epochs": 2, "log_every": 1},
        "optim": {"lr": 1e-3},
    }
    for name, values in tables.items():
        data.setdefault(name, {}).update(values)
    return Config.from_dict(data)


@pytest.fixture(scope="module")
def toy():
    return PosedHands(12, 128, seed=0), PosedHands(4, 128, seed=1)


def batch_of(dataset, trainer, n=4):
    samples = [trainer.task.add_targets(dataset[i]) for i in range(n)]
    return {k: torch.as_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}


def total_loss(trainer, batch) -> float:
    trainer.model.train()
    with torch.no_grad():
        out = trainer.model(trainer.task.inputs(batch))
        return float(sum(trainer.task.losses(out, batch, epoch=0).values()))


def test_tiny_acr_config_lowers_the_loss(toy, tmp_path):
    config = tiny_config(train={"epochs": 6})
    trainer = Trainer(config, tmp_path, progress=False, datasets=toy)
    batch = batch_of(toy[0], trainer)
    before = total_loss(trainer, batch)
    trainer.run(resume=False)
    after = total_loss(trainer, batch)
    assert trainer.step == 18
    assert after < 0.5 * before, (before, after)


def test_resume_continues_bit_identically(toy, tmp_path):
    # augmentation on: every sample's random changes must replay identically after the resume
    config = tiny_config(train={"epochs": 3, "grad_clip": 1.0}, data={"augment": "acr"})
    straight = Trainer(config, tmp_path / "a", progress=False, datasets=toy)
    straight.run(resume=False)

    first = Trainer(config, tmp_path / "b", progress=False, datasets=toy)
    first.run(max_steps=4, resume=False)  # "crash" after 4 of 9 steps, mid-epoch
    assert load_checkpoint(tmp_path / "b" / LAST)["step"] == 4
    second = Trainer(config, tmp_path / "b", progress=False, datasets=toy)
    second.run()
    assert second.step == straight.step == 9
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a, opt_b = straight.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    assert all(torch.equal(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"]) for i in opt_a)
    rows = list(csv.DictReader((tmp_path / "b" / "train.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 10))  # no step logged twice


def test_checkpoint_carries_config_hand_model_and_record(toy, tmp_path):
    trainer = Trainer(tiny_config(), tmp_path, progress=False, datasets=toy)
    trainer.run(resume=False)
    state = load_checkpoint(tmp_path / LAST)
    assert state["network"] == "acr"
    assert state["network_config"]["hrnet_width"] == 8
    assert state["config"]["train"]["batch_size"] == 4
    assert state["hand_model_id"]["right"].startswith("openhand")
    assert [r["epoch"] for r in state["record"]] == [1, 2]
    assert all(math.isfinite(r["mpjpe"]) for r in state["record"])
    assert (tmp_path / "best.pt").exists()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    header = (tmp_path / "train.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "center", "joints3d", "lr", "step"} <= set(header)


def test_resume_refuses_another_config(toy, tmp_path):
    Trainer(tiny_config(), tmp_path, progress=False, datasets=toy).run(max_steps=1)
    other = Trainer(tiny_config(optim={"lr": 5e-4}), tmp_path, progress=False, datasets=toy)
    with pytest.raises(HandmocapError, match="different \\[optim\\] config"):
        other.run()


def test_learning_rate_schedules():
    step = OptimConfig(lr=1.0, schedule="step", milestones=(10, 20), gamma=0.1)
    assert [learning_rate(step, e, 0, 30) for e in (0, 9, 10, 19.5, 20)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01]
    )
    cosine = OptimConfig(lr=2.0, schedule="cosine", t_max=4)
    assert [learning_rate(cosine, e, 0, 4) for e in range(5)] == pytest.approx(
        [2.0, 1 + math.cos(math.pi / 4), 1.0, 1 - math.cos(math.pi / 4), 0.0]
    )
    warm = OptimConfig(lr=1.0, schedule="constant", warmup_steps=4)
    assert [learning_rate(warm, 0, s, 1) for s in range(5)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0]
    )


def test_config_file_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nnetwork = "acr"\n[train]\nbatch = 4\n')
    with pytest.raises(HandmocapError, match="bad.toml.*unknown keys: \\['batch'\\]"):
        load_config(path)
    path.write_text('[model]\nnetwork = "acr"\nhrnet_widht = 8\n')
    with pytest.raises(HandmocapError, match="unknown acr options: \\['hrnet_widht'\\]"):
        load_config(path)
    path.write_text("[model\n")
    with pytest.raises(HandmocapError, match="not a valid TOML"):
        load_config(path)
    with pytest.raises(HandmocapError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_config_paths_are_relative_to_the_file(tmp_path):
    path = tmp_path / "sub" / "run.toml"
    path.parent.mkdir()
    path.write_text('[data]\nkind = "synthetic"\nroot = "../data"\n')
    assert Path(load_config(path).data.root) == (tmp_path / "data").resolve()


TINY_DIR = {
    "network": "dir",
    "resnet_layers": [1, 1, 1, 1],
    "resnet_width": 8,
    "decoder_dim": 32,
    "embed_dim": 16,
    "joint_dim": 8,
}


def test_tiny_dir_config_lowers_the_loss(tmp_path):
    toy = PosedHands(8, 256, seed=2), PosedHands(4, 256, seed=3)
    config = Config.from_dict(
        {
            "model": TINY_DIR,
            "data": {"augment": "none"},
            "train": {"batch_size": 4, "epochs": 5, "log_every": 1},
            "optim": {"optimizer": "adamw", "lr": 1e-3, "schedule": "cosine", "t_max": 10},
        }
    )
    trainer = Trainer(config, tmp_path, progress=False, datasets=toy)
    batch = batch_of(toy[0], trainer)
    before = total_loss(trainer, batch)
    trainer.run(resume=False)
    after = total_loss(trainer, batch)
    assert trainer.step == 10
    assert after < 0.7 * before, (before, after)
    assert {"mpjpe", "pa_mpjpe", "mrrpe", "mpjpe_2d", "pck_2d"} <= set(trainer.record[-1])
    assert math.isfinite(trainer.record[-1]["mpjpe_2d"])
