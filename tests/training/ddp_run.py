"""Run by test_distributed.py, alone or under torchrun: train the tiny ACR on toy samples with
frozen batch norm; rank 0 saves the first and last weights to ``OUT/start.pt``, ``weights.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from test_trainer import tiny_config  # noqa: E402
from toydata import PosedHands  # noqa: E402

from handmocap.training.trainer import Trainer  # noqa: E402


def main(out: Path, steps: int) -> None:
    torch.set_num_threads(1)
    config = tiny_config(
        train={"batch_size": 4, "epochs": 10, "freeze_bn": True, "log_every": 1},
        data={"augment": "acr"},
        # Adam divides by the gradient's running size: where a gradient is ~0 (heads without
        # labels here) the last-bit differences of a different reduction order would become
        # whole steps. A larger epsilon keeps those steps as small as their gradients.
        optim={"eps": 1e-3},
    )
    data = (PosedHands(8, 128, seed=0), PosedHands(2, 128, seed=1))
    trainer = Trainer(config, out, progress=False, datasets=data)
    rank = trainer.dist.rank
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(trainer.model.state_dict(), out / "start.pt")
    trainer.run(max_steps=steps, resume=False)
    if rank == 0:
        torch.save(trainer.model.state_dict(), out / "weights.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
