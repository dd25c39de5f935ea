"""Evaluation: run a network over a dataset and measure its hands with ``training.metrics``.

Predicted hands are compared in the camera's orientation; the protocol aligns roots (and
scale) as the papers do. Both hands of a prediction share one frame (the network's estimate of
the right root relative to the left), so MRRPE measures that estimate. A hand the network did
not find still counts with its best guess (the parameters at the best centre), as the papers'
tables count every labelled hand; ``found`` reports how many were found. Both networks also
place the 21 keypoints in the image (ACR through its weak-perspective camera, DIR with its 2D
joints), measured against the labelled 2D joints in pixels of the network's input
(``mpjpe_2d``, ``pck_2d``).
"""

from __future__ import annotations

import contextlib
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from handmocap.core.errors import HandmocapError
from handmocap.training.metrics import Evaluator
from handmocap.training.sample import SIDES

DEFAULT_PROTOCOL = "intaghand"  # middle-knuckle root and bone scale: DIR's and ACR's tables


def ground_truth_vertices(layer, batch: dict[str, torch.Tensor]) -> np.ndarray | None:
    """(B, 2, V, 3) camera-frame vertices from the labelled parameters (None if sizes differ)."""
    out = []
    for k, side in enumerate(SIDES):
        posed = layer(side, batch["global_orient"][:, k].float(), batch["hand_pose"][:, k].float(),
                      batch["betas"][:, k].float(), batch["transl"][:, k].float())  # fmt: skip
        out.append(posed.vertices.cpu().numpy())
    return np.stack(out, 1) if out[0].shape == out[1].shape else None


@torch.no_grad()
def measure(
    task,
    dataset,
    device,
    batch_size: int,
    protocol: str = DEFAULT_PROTOCOL,
    autocast=None,
    limit: int | None = None,
    progress=None,
) -> tuple[Evaluator, dict]:
    """Run ``task``'s network over ``dataset``; the filled Evaluator and detection counts."""
    was_training = task.model.training
    task.model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    batches = len(loader) if limit is None else min(len(loader), -(-limit // batch_size))
    evaluator = Evaluator(protocol)
    params_match = getattr(dataset, "hand_model_kind", None) in (None, _kind(task))
    found = labelled = 0
    try:
        for batch in islice(loader, batches):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast() if autocast else contextlib.nullcontext():
                output = task.model(task.inputs(batch))
            pred = task.predictions(output, batch)
            gt = {k: v.cpu().numpy() for k, v in batch.items() if k != "image"}
            valid = gt["joints3d_valid"] * gt["hand_valid"]
            extra = {}
            with_params = params_match and (gt["params_valid"] > 0).all()
            if with_params and pred.vertices.shape[2]:
                gt_vertices = ground_truth_vertices(task.layer, batch)
                if gt_vertices is not None:
                    extra = {"pred_vertices": pred.vertices, "gt_vertices": gt_vertices}
            if pred.keypoints_2d is not None:
                extra |= {"pred_2d": pred.keypoints_2d, "gt_2d": gt["joints2d"][..., :2],
                          "weights_2d": gt["joints2d"][..., 2]}  # fmt: skip
            evaluator.update(pred.keypoints, gt["joints3d"], valid, gt["interacting"], **extra)
            found += int((pred.found & (valid > 0)).sum())
            labelled += int((valid > 0).sum())
            if progress:
                progress(1)
    finally:
        task.model.train(was_training)
    return evaluator, {"found": found, "labelled": labelled}


def _kind(task) -> str:
    return task.layer.models["right"].kind


def evaluate_task(task, dataset, device, batch_size: int, autocast=None, limit=None) -> dict:
    """Flat validation metrics for the trainer: the "all" subset (mm), plus ``found``."""
    evaluator, counts = measure(task, dataset, device, batch_size, autocast=autocast, limit=limit)
    summary = evaluator.summary()["all"]
    flat = {k: float(v) for k, v in summary.items() if k != "samples"}
    flat["found"] = counts["found"] / max(counts["labelled"], 1)
    return flat


def load_for_evaluation(path: Path, models_dir: Path | None = None, device="cpu"):
    """(task, config) rebuilt from a ``handmocap train`` checkpoint, weights loaded."""
    from handmocap.core.checkpoints import check_and_load, read_project_checkpoint
    from handmocap.core.handmodel import HandLayer, load_hand_models
    from handmocap.training.config import Config
    from handmocap.training.tasks import build_model, build_task

    state = read_project_checkpoint(path)
    config = Config.from_dict(state["config"])
    models = load_hand_models(models_dir, state["hand_model_kind"])
    ids = {s: m.model_id for s, m in models.items()}
    if ids != state["hand_model_id"]:
        trained = state["hand_model_id"]["right"]
        raise HandmocapError(f"{path} was trained with another hand model ({trained})")
    model = build_model(config, models)
    check_and_load(model, state["model"], str(path), state["network"])
    layer = HandLayer(models)
    task = build_task(config, model.to(device), layer.to(device))
    task.loss.to(device)
    return task, config
