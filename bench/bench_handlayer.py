"""HandLayer speed and memory: forward at batch 1, 64 and 1024, forward + backward at batch 64.

Open hand model, right hand, random poses. Forward runs under ``torch.inference_mode``; on the
CPU torch uses 2 threads, as on CI. Figures are medians after warm-up; frames per second is the
batch size over that time. Peak RSS is the whole process's (Python, torch, the models).

    .venv/bin/python bench/bench_handlayer.py [--device cuda]
"""

from __future__ import annotations

from typing import Any

import torch
from common import device_args, median_seconds, peak_rss_mib, setup_torch, write_results

from handmocap.core.handmodel import HandLayer

FORWARD = ((1, 200), (64, 50), (1024, 10))  # (batch, timed runs)
BACKWARD_BATCH, BACKWARD_RUNS = 64, 30


def random_inputs(batch: int, device: str, grad: bool = False) -> list[torch.Tensor]:
    """global_orient, hand_pose, betas, transl of ``batch`` plausible random hands."""
    gen = torch.Generator().manual_seed(batch)
    shapes = ((batch, 3), (batch, 15, 3), (batch, 10), (batch, 3))
    scales = (1.0, 0.4, 1.0, 0.1)
    return [
        (torch.randn(s, generator=gen) * k).to(device).requires_grad_(grad)
        for s, k in zip(shapes, scales, strict=True)
    ]


def row(setting: str, batch: int, seconds: float) -> dict[str, Any]:
    fps = batch / seconds
    return {
        "setting": setting,
        "batch": batch,
        "seconds": seconds,
        "frames_per_s": fps,
        "figure": f"{seconds * 1e3:.3g} ms ({fps:,.0f} frames/s)",
    }


def bench_forward(layer: HandLayer, batch: int, runs: int, device: str) -> dict[str, Any]:
    inputs = random_inputs(batch, device)
    with torch.inference_mode():
        seconds = median_seconds(lambda: layer("right", *inputs), runs, 3, device)
    return row(f"forward, batch {batch}", batch, seconds)


def bench_backward(layer: HandLayer, batch: int, runs: int, device: str) -> dict[str, Any]:
    inputs = random_inputs(batch, device, grad=True)

    def step() -> None:
        out = layer("right", *inputs)
        (out.vertices.square().sum() + out.keypoints.square().sum()).backward()

    seconds = median_seconds(step, runs, 3, device)
    return row(f"forward + backward, batch {batch}", batch, seconds)


def main() -> None:
    device = device_args(__doc__.splitlines()[0]).device
    setup_torch(device)
    layer = HandLayer.from_models_dir(None, "openhand").to(device)
    results = [bench_forward(layer, batch, runs, device) for batch, runs in FORWARD]
    results.append(bench_backward(layer, BACKWARD_BATCH, BACKWARD_RUNS, device))
    rss = peak_rss_mib()
    results.append({"setting": "peak RSS (process)", "mib": rss, "figure": f"{rss:.0f} MiB"})
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        results.append({"setting": "peak CUDA memory", "mib": peak, "figure": f"{peak:.0f} MiB"})
    write_results("handlayer", device, results)


if __name__ == "__main__":
    main()
