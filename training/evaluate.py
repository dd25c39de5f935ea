"""Evaluation: run a task's network over a dataset and measure its hands (``training.metrics``)."""

from __future__ import annotations

import contextlib
from itertools import islice

import numpy as np
import torch


def gt_batch(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.cpu().numpy() for k, v in batch.items() if k != "image"}


@torch.no_grad()
def evaluate_task(task, dataset, device, batch_size: int, autocast=None, limit=None) -> dict:
    """Flat metrics (mm) of ``task``'s network on ``dataset`` (at most ``limit`` samples)."""
    was_training = task.model.training
    task.model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    batches = len(loader) if limit is None else -(-limit // batch_size)
    errors = []
    try:
        for batch in islice(loader, batches):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast() if autocast else contextlib.nullcontext():
                output = task.model(task.inputs(batch))
            pred = task.predictions(output, batch)
            gt = batch["joints3d"].cpu().numpy()
            gt = gt - gt[:, :, 9:10]
            kp = pred.keypoints - pred.keypoints[:, :, 9:10]
            valid = batch["joints3d_valid"].cpu().numpy() > 0
            errors.append(np.linalg.norm(kp - gt, axis=-1).mean(-1)[valid])
    finally:
        task.model.train(was_training)
    return {"mpjpe": float(np.concatenate(errors).mean() * 1000)}
