"""Can an ACR config learn global hand orientation from a synthetic dataset? A diagnostic.

Trains the config's network from scratch on one objective only: the L2 between the predicted
and the labelled global rotation matrices, read at each labelled hand's centre (as the pose
loss reads them), without augmentation. Every ``--every`` steps it prints the median angle error
of the last batches. Random rotations give about 126 degrees. A network that only memorises
falls on a small ``--subset`` but stays at chance on the whole set.

    python tools/probe_orientation.py configs/acr_light.toml --data data/synth_light --steps 400
    python tools/probe_orientation.py configs/acr_light.toml --data data/synth_light --subset 256

``--branch global`` reads the global parameter map and drops the part branch and the
cross-hand prior, to tell whether the part branch holds orientation back.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset


def main(argv: list[str] | None = None) -> list[float]:
    """Run the probe; the median angle error (degrees) of every step's batch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="an ACR training config (its model table)")
    parser.add_argument("--data", type=Path, required=True, help="a synthetic dataset folder")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--subset", type=int, default=0, help="train on the first N samples")
    parser.add_argument("--branch", choices=("fused", "global"), default="fused")
    parser.add_argument("--every", type=int, default=25, help="report every N steps")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from handmocap.core.handmodel import HandLayer, load_hand_models
    from handmocap.core.rotations import axis_angle_to_matrix
    from handmocap.training.config import load_config
    from handmocap.training.data import TrainingSet
    from handmocap.training.datasets.synthetic import SyntheticDataset
    from handmocap.training.losses.acr import labelled_centers, read_at_centers
    from handmocap.training.sample import SIDES
    from handmocap.training.tasks import build_model, build_task

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = load_config(args.config)
    models = load_hand_models(None, "openhand")
    model = build_model(config, models)
    task = build_task(config, model, HandLayer(models))
    samples = TrainingSet(SyntheticDataset(args.data), task.add_targets)
    if args.subset:
        samples = Subset(samples, range(min(args.subset, len(samples))))
    loader = DataLoader(samples, args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))  # fmt: skip

    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    model.train()
    errors, step, start = [], 0, time.time()
    while step < args.steps:
        for batch in loader:
            maps = model(task.inputs(batch))
            if args.branch == "global":
                for side in SIDES:
                    maps[f"{side}_params"] = maps[f"{side}_params_global"]
                    maps[f"{side}_prior"] = torch.zeros_like(maps[f"{side}_prior"])
            cells, present = labelled_centers(batch)
            hands = read_at_centers(maps, cells, present)
            loss, angles = 0.0, []
            for k, side in enumerate(SIDES):
                ok = present[:, k]
                if not ok.any():
                    continue
                label = axis_angle_to_matrix(batch["global_orient"][:, k].float())[ok]
                pred = hands[side].rotations[ok, 0]
                loss = loss + ((pred - label) ** 2).sum((1, 2)).mean()
                cos = (((pred * label).sum((1, 2)) - 1) / 2).clamp(-1, 1)
                angles.append(torch.rad2deg(torch.arccos(cos)).detach())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            errors.append(float(torch.cat(angles).median()))
            if step % args.every == 0:
                recent = float(np.mean(errors[-args.every :]))
                print(f"step {step}: median angle error {recent:.1f} deg "
                      f"({time.time() - start:.0f} s)", flush=True)  # fmt: skip
            if step >= args.steps:
                break
    return errors


if __name__ == "__main__":
    main()
