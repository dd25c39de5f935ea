"""After training: a weights-only export to ship, and a picture of the training curve."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from handmocap.core.checkpoints import read_project_checkpoint

# What a shipped file keeps of a training checkpoint (no optimizer, scaler or RNG states).
KEEP = ("format", "network", "network_config", "config", "hand_model_id", "hand_model_kind",
        "model", "step", "epoch", "record", "versions")  # fmt: skip


def export_weights(source: Path, target: Path, half: bool = False, **extra) -> Path:
    """Write the weights, config, hand model ids and training record of ``source`` to
    ``target`` (``half``: floating-point weights stored as fp16, loaded back as fp32)."""
    state = read_project_checkpoint(source)
    out = {k: state[k] for k in KEEP if k in state}
    if half:
        out["model"] = {
            k: v.half() if v.is_floating_point() else v for k, v in out["model"].items()
        }
    out.update(extra)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, target)
    return target


def read_rows(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            {k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)
        ]


def plot_training(run: Path, out: Path, title: str = "") -> Path:
    """A PNG of a run's training loss (log scale, smoothed) and validation MPJPE by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    train, val = read_rows(run / "train.csv"), read_rows(run / "val.csv")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    if train:
        steps = np.array([r["step"] for r in train])
        loss = np.array([r["loss"] for r in train])
        left.plot(steps, loss, color="0.75", lw=0.8, label="loss")
        k = max(1, len(loss) // 30)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        left.plot(steps[k - 1 :], smooth, color="C0", lw=1.6, label=f"mean of {k}")
        left.set_yscale("log")
        left.legend()
    left.set(xlabel="step", ylabel="training loss", title="training loss")
    if val:
        for key, color in (("mpjpe", "C1"), ("pa_mpjpe", "C2")):
            rows = [r for r in val if key in r]
            right.plot([r["step"] for r in rows], [r[key] for r in rows], "o-", color=color,
                       label=key.upper().replace("_", "-"))  # fmt: skip
        right.legend()
    right.set(xlabel="step", ylabel="mm", title="held-out MPJPE")
    right.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
