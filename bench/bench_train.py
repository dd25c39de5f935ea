"""Training throughput: samples per second of one ``Trainer.train_step`` (forward, the named
losses, backward, clipping, Adam) for ACR and DIR, on samples of the open hand model drawn by
the test suite's painter (``tests/training/toydata.py``; the images do not change the speed).

Rows: the tiny test configs (``configs/acr_tiny.toml``, ``dir_tiny.toml``), a light ACR
(ResNet backbone, 128 px) and the released sizes (ACR HRNet-W32 at 512 px, DIR ResNet-50 at
256 px), fp32, batch 8 (4 for the released sizes on the CPU), median of a few steps after 2
untimed ones.

    .venv/bin/python bench/bench_train.py [--device cuda]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import device_args, median_seconds, setup_torch, write_with_memory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "training"))

from toydata import PosedHands  # noqa: E402

from handmocap.training.config import Config, load_config  # noqa: E402
from handmocap.training.trainer import Trainer  # noqa: E402

LIGHT_ACR = {"network": "acr", "backbone": "resnet", "resnet_layers": [1, 1, 1, 1],
             "resnet_width": 16, "resnet_deconv": 64, "head_width": 32, "head_blocks": 1,
             "part_dim": 64, "input_size": 128}  # fmt: skip


def config_for(model: dict, batch: int, device: str) -> Config:
    return Config.from_dict({"model": model, "data": {"augment": "none"},
                             "train": {"batch_size": batch, "device": device,
                                       "grad_clip": 1.0}})  # fmt: skip


def measure(name: str, config: Config, device: str, runs: int) -> dict:
    size = config.model.network_config().input_size
    batch = config.train.batch_size
    data = PosedHands(batch, size, seed=0)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, Path(out), progress=False, datasets=(data, data))
        samples = [trainer.task.add_targets(data[i]) for i in range(batch)]
        stacked = {k: torch.as_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}
        stacked = trainer.to_device(stacked)
        seconds = median_seconds(lambda: trainer.train_step(stacked), runs, device=device)
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    rate = batch / seconds
    return {"setting": f"{name} ({params:.1f} M parameters, {size} px, batch {batch}, fp32)",
            "samples_per_s": rate, "seconds_per_step": seconds,
            "figure": f"{rate:.1f} samples/s ({seconds * 1000:.0f} ms/step)"}  # fmt: skip


def main() -> None:
    args = device_args(__doc__.splitlines()[0])
    setup_torch(args.device)
    big = 16 if args.device == "cuda" else 4
    rows = []
    for name, file in (("ACR tiny", "acr_tiny.toml"), ("DIR tiny", "dir_tiny.toml")):
        model = load_config(ROOT / "configs" / file).to_dict()["model"]
        model = {"network": model["network"], **model["options"]}
        rows.append(measure(name, config_for(model, 8, args.device), args.device, 5))
    rows.append(measure("ACR light", config_for(LIGHT_ACR, 8, args.device), args.device, 5))
    rows.append(measure("ACR released size", config_for({"network": "acr"}, big, args.device),
                        args.device, 3))  # fmt: skip
    rows.append(measure("DIR released size", config_for({"network": "dir"}, big, args.device),
                        args.device, 3))  # fmt: skip
    write_with_memory("train", args.device, rows)


if __name__ == "__main__":
    main()
