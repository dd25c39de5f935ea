"""DIR throughput: the official mode, batched fp32 and bf16 + channels_last, compiled, the backend.

Frames per second of the DIR network (ResNet-50 encoder, two refinement stages; random weights:
weights do not change the speed), each figure ``DIRBackend.run_network`` on 256x256 uint8 crops
(stacking, the move to the device, ImageNet normalisation, channels_last when asked, autocast
when asked, the forward with its six posings of the hand layer in fp32) under
``torch.inference_mode``:

1. the official mode: batch 1, fp32, eager, contiguous;
2. batched (8 on the CPU, 32 on CUDA), channels_last, in fp32 and under bf16 autocast;
3. the batched mode (bf16 where native, else fp32) under ``torch.compile`` (inductor with its
   defaults, cold cache in a temporary folder; compile time and dynamo's graph and graph-break
   counts reported apart; compiling given up after 5 minutes, the row then says why and eager
   stands), twice: the ResNet-50 encoder alone (``model.backbone.forward_features``; the rest
   eager), and the whole model. The whole model breaks into many graphs: its hand layer calls
   ``smplx.lbs``, whose kinematic chain indexes a Python list with a tensor
   (``transform_chain[parents[i]]``), a ``Tensor.item()`` that dynamo cannot trace, in each of
   the six posings (three stages, two hands);
4. the whole ``DIRBackend`` on a real photo of two hands (640x960), batch 1, fp32: MediaPipe's
   hand landmarks (image mode), the two-hand crop, the network and both hands posed by the
   open hand model; and the MediaPipe detector alone on the same photo, to show the split.

On a CPU without native bf16 (oneDNN bf16 convolutions need AVX512-BF16 or AMX) torch runs bf16
convolutions with its reference kernels, several times slower than fp32: there bf16 is measured
at batch 1 with one timed run, and the fp32 channels_last batch is the one compiled (the same
check and rule as ``bench_acr.py``).

    .venv/bin/python bench/bench_dir.py [--device cuda]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from bench_acr import (
    CompileTimeout,
    LoadMeter,
    bf16_native,
    cold_inductor_cache,
    compiled_rows,
    measure,
    not_compiled,
    time_limit,
)
from common import device_args, peak_rss_mib, setup_torch, synchronize, write_with_memory

from handmocap.core.backends.dir import DIRBackend, MediaPipeDetector
from handmocap.core.dir.crop import INPUT_SIZE
from handmocap.core.dir.model import DIR, DIRConfig
from handmocap.core.handmodel import HandLayer

FRAME = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "realdata"
    / "mediapipe_rs"
    / "google_sample_woman_hands.jpg"
)
BATCH = {"cpu": 8, "cuda": 32}
RUNS = {"cpu": (7, 3), "cuda": (20, 10)}  # timed runs: batch 1, batched
WARMUP = {"cpu": (3, 1), "cuda": (5, 3)}
COMPILE_LIMIT_S = 300
CHANNELS_LAST = "channels_last"
COMPILED_PARTS = {  # what torch.compile is given -> (its name, the row's words)
    "backbone": (
        "model.backbone.forward_features",
        "torch.compile of the ResNet-50 encoder alone (model.backbone.forward_features), "
        "rest eager",
    ),
    "model": ("model", "torch.compile of the whole model (graph breaks in smplx.lbs)"),
}


def random_crops(batch: int) -> list[np.ndarray]:
    """``batch`` (256, 256, 3) uint8 crops, as ``DIRBackend.crops`` cuts them (content does not
    matter)."""
    rng = np.random.default_rng(batch)
    return [rng.integers(0, 256, (INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8) for _ in range(batch)]


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def mode_name(batch: int, precision: str, layout: str, run: str) -> str:
    parts = [f"batch {batch}", precision]
    if layout == CHANNELS_LAST:
        parts.append(CHANNELS_LAST)
    return ", ".join([*parts, run])


def backend_for(model: DIR, layer: HandLayer, device: str, detector=None, **options) -> DIRBackend:
    """A ``DIRBackend`` (still image mode) around ``model``; ``channels_last`` converts ``model``
    in place, for every backend that shares it."""
    return DIRBackend(model, layer, detector, device=device, video=False, **options)


def bench_official(model: DIR, layer: HandLayer, device: str) -> dict[str, Any]:
    """Mode 1, the official one: batch 1, fp32, contiguous, eager."""
    name = f"official mode (ResNet-50, {mode_name(1, 'fp32', 'contiguous', 'eager')})"
    backend = backend_for(model, layer, device)
    crops = random_crops(1)
    fields = {"precision": "fp32", "memory_format": "contiguous"}
    runs, warmup = RUNS[device][0], WARMUP[device][0]
    step = lambda: backend.run_network(crops)  # noqa: E731
    return measure(name, step, 1, runs, warmup, device, **fields, compiled=False)


def bench_batched(model: DIR, layer: HandLayer, device: str) -> list[dict[str, Any]]:
    """Mode 2: batched, channels_last (the model is converted), in fp32 and bf16 autocast."""
    runs, warmup = RUNS[device][1], WARMUP[device][1]
    batch = BATCH[device]
    crops = random_crops(batch)
    backend = backend_for(model, layer, device, channels_last=True)
    name = mode_name(batch, "fp32", CHANNELS_LAST, "eager")
    fields = {"precision": "fp32", "memory_format": CHANNELS_LAST}
    step = lambda: backend.run_network(crops)  # noqa: E731
    rows = [measure(name, step, batch, runs, warmup, device, **fields, compiled=False)]

    fields = {**fields, "precision": "bf16"}
    bf16 = backend_for(model, layer, device, precision="bf16", channels_last=True)
    if bf16_native(device):
        name = mode_name(batch, "bf16 autocast", CHANNELS_LAST, "eager")
        step = lambda: bf16.run_network(crops)  # noqa: E731
        rows.append(measure(name, step, batch, runs, warmup, device, **fields, compiled=False))
    else:
        # Reference kernels: seconds a frame here, far more than fp32 for a whole batch.
        name = mode_name(1, "bf16 autocast", CHANNELS_LAST, "eager")
        name += ", no native bf16 on this CPU"
        note = (
            f"no oneDNN bf16 on this CPU: bf16 convolutions run torch's reference kernels; "
            f"measured at batch 1 with 1 timed run instead of batch {batch}"
        )
        step = lambda: bf16.run_network(crops[:1])  # noqa: E731
        rows.append(measure(name, step, 1, 1, 1, device, **fields, compiled=False, note=note))
    return rows


def graph_counts() -> tuple[int, int]:
    """(graph breaks, graphs) dynamo has counted since ``counters`` were last cleared."""
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values()), counters["stats"]["unique_graphs"]


def bench_compiled(
    model: DIR, layer: HandLayer, device: str, eager: dict[str, Any], part: str
) -> list[dict[str, Any]]:
    """The batched mode (bf16 where native, else fp32) with ``part`` compiled by inductor (its
    defaults): ``"backbone"`` the ResNet-50 encoder alone, the rest eager; ``"model"`` the
    whole network, graph breaks and all."""
    from torch._dynamo.utils import counters

    batch = BATCH[device]
    native = bf16_native(device)
    precision = "bf16 autocast" if native else "fp32"
    fields: dict[str, Any] = {
        "precision": "bf16" if native else "fp32",
        "memory_format": CHANNELS_LAST,
        "compiled_part": COMPILED_PARTS[part][0],
        "inductor_options": {},
    }
    if not native:
        fields["note"] = "no native bf16 on this CPU: the fp32 channels_last batch is compiled"
    crops = random_crops(batch)
    label = mode_name(batch, precision, CHANNELS_LAST, COMPILED_PARTS[part][1])
    backbone = model.backbone
    torch._dynamo.reset()
    counters.clear()
    with cold_inductor_cache("bench_dir_inductor_"):
        if part == "backbone":
            # An instance attribute shadows the method DIR.forward calls; deleted below.
            backbone.forward_features = torch.compile(backbone.forward_features)
            network = model
        else:
            network = torch.compile(model)
        backend = backend_for(network, layer, device, precision=fields["precision"],
                              channels_last=True)  # fmt: skip
        step = lambda: backend.run_network(crops)  # noqa: E731
        start, load = time.perf_counter(), LoadMeter()
        limit = time_limit(COMPILE_LIMIT_S)
        try:
            with limit, torch.inference_mode():
                step()
                synchronize(device)
            if limit.expired:  # an alarm was swallowed and the compile went on to the end
                raise CompileTimeout(f"compiling took longer than {COMPILE_LIMIT_S} s")
            first_call, compile_load = time.perf_counter() - start, load.others_share()
            breaks, graphs = graph_counts()
            runs, warmup = RUNS[device][1], WARMUP[device][1]
            row = measure(label, step, batch, runs, warmup, device, **fields, compiled=True)
        except Exception as error:  # a timeout, or inductor failing on this machine
            elapsed = time.perf_counter() - start
            return not_compiled(label, fields, limit.expired, error, elapsed)
        finally:
            if part == "backbone":
                del backbone.forward_features
            torch._dynamo.reset()
    more = f"; {count(graphs, 'graph')}, {count(breaks, 'graph break')}"
    return compiled_rows(label, row, eager, first_call, compile_load, more,
                         graph_breaks=breaks, graphs=graphs)  # fmt: skip


def bench_backend(model: DIR, layer: HandLayer, device: str) -> list[dict[str, Any]]:
    """The whole backend on the two-hand photo, and its MediaPipe detector alone."""
    setting = (
        "full DIRBackend, {size} photo of two hands (MediaPipe image mode, crop, network "
        "batch 1 fp32 eager, both hands posed)"
    )
    detector_setting = "MediaPipe detector alone (image mode), same photo"
    if not FRAME.is_file():
        print(f"  {setting.format(size='640x960')}: skipped, {FRAME} not found", flush=True)
        figure = f"skipped: {FRAME.name} not found"
        return [
            {"setting": setting.format(size="640x960"), "figure": figure},
            {"setting": detector_setting, "figure": figure},
        ]
    frame = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    size = f"{frame.shape[1]}x{frame.shape[0]}"
    detector = MediaPipeDetector(video=False)
    backend = backend_for(model, layer, device, detector)
    found = backend([frame])[0]
    fields = {"frame": size, "hands": len(found), "reason": backend.reasons[0]}
    runs, warmup = RUNS[device][0], WARMUP[device][0]
    rows = [measure(setting.format(size=size), lambda: backend([frame]), 1, runs, warmup, device,
                    **fields)]  # fmt: skip
    if len(found) != 2:  # then no network ran: say so beside the figure
        rows[0]["figure"] += f"; {backend.reasons[0]}"
    fields = {"frame": size, "hands": len(detector(frame))}
    rows.append(measure(detector_setting, lambda: detector(frame), 1, runs, warmup, device,
                        **fields))  # fmt: skip
    return rows


def main() -> None:
    device = device_args(__doc__.splitlines()[0]).device
    setup_torch(device)
    torch.manual_seed(0)
    model = DIR.from_models_dir(DIRConfig(), None, "openhand").eval().to(device)
    layer = HandLayer.from_models_dir(None, "openhand")
    results = [bench_official(model, layer, device)]
    rss = peak_rss_mib()
    setting = "peak RSS after the official mode (process)"
    results.append({"setting": setting, "mib": rss, "figure": f"{rss:.0f} MiB"})
    results.extend(bench_backend(model, layer, device))
    batched = bench_batched(model, layer, device)  # converts the model to channels_last
    results.extend(batched)
    print("torch.compile", flush=True)
    eager = batched[1] if bf16_native(device) else batched[0]
    for part in COMPILED_PARTS:
        results.extend(bench_compiled(model, layer, device, eager, part))
    write_with_memory("dir", device, results)


if __name__ == "__main__":
    main()
