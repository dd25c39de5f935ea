"""ACR throughput: the official demo's mode, batched bf16 + channels_last, compiled, ResNet-50.

Frames per second of the ACR network (random weights: weights do not change the speed), each
figure the network forward plus ``parse_maps`` as ``ACRBackend.run_network`` runs them (uint8
input scaled to [-1, 1], channels_last when asked, autocast when asked), on 512x512 inputs under
``torch.inference_mode``:

1. the official demo's mode: HRNet-W32, batch 1, fp32, eager, contiguous;
2. batched (8 on the CPU, 32 on CUDA), bf16 autocast, channels_last, eager, and the same batch
   in fp32 channels_last to tell the effect of batching from that of bf16;
3. the batched mode compiled with ``torch.compile`` (inductor with its defaults, then with
   ``freezing``; cold cache in a temporary folder): the compile time is reported apart, and
   compiling is given up after 5 minutes (the row then says why, and eager stands);
4. the ResNet-50 backbone in modes 1 and 2;
5. the whole ``ACRBackend`` on the ACR demo's 1920x1080 frame, batch 1, fp32: letterbox, network,
   parsing, and both hands posed by the open hand model (threshold -inf: random weights detect
   nothing at 0.35, and a frame with two hands is the case that costs most).

On a CPU without native bf16 (oneDNN bf16 convolutions need AVX512-BF16 or AMX) torch runs bf16
convolutions with its reference kernels, tens of times slower than fp32: there bf16 is measured
at batch 1 with one timed run, and the fp32 channels_last batch is the one compiled.

    .venv/bin/python bench/bench_acr.py [--device cuda]
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import cv2
import torch
from common import (
    _cpu_seconds,
    device_args,
    median_seconds,
    peak_rss_mib,
    setup_torch,
    synchronize,
    write_with_memory,
)

from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.acr.parse import parse_maps
from handmocap.core.acr.preprocess import to_network_input
from handmocap.core.backends.acr import ACRBackend
from handmocap.core.handmodel import HandLayer

FRAME = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "acr_demo" / "magic.jpg"
INPUT_SIZE = 512
BATCH = {"cpu": 8, "cuda": 32}
RUNS = {"cpu": (5, 2), "cuda": (20, 10)}  # timed runs: batch 1, batched
WARMUP = {"cpu": (3, 1), "cuda": (5, 3)}
COMPILE_LIMIT_S = 300
BACKBONES = {"hrnet": "HRNet-W32", "resnet": "ResNet-50"}
CHANNELS_LAST = "channels_last"


class CompileTimeout(Exception):
    pass


def bf16_native(device: str) -> bool:
    """Whether bf16 convolutions have fast kernels (always on CUDA; oneDNN's on the CPU)."""
    return device == "cuda" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class LoadMeter:
    """CPU share of other processes from now to ``others_share()`` (as ``common.other_load``)."""

    def __init__(self):
        self.start = (time.monotonic(), *_cpu_seconds())

    def others_share(self) -> float:
        start, busy0, _, own0 = self.start
        busy, _, own = _cpu_seconds()
        capacity = (time.monotonic() - start) * (os.cpu_count() or 1)
        return round(max(0.0, busy - busy0 - (own - own0)) / capacity, 3)


def rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def per_frame(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g} ms/frame" if ms < 1000 else f"{seconds:.3g} s/frame"


def network_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    device: str,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> Callable[[], object]:
    """What ``ACRBackend.run_network`` does once the frames are letterboxed."""

    def step() -> object:
        x = to_network_input(images)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device, dtype=dtype) if dtype else nullcontext():
            maps = model(x)
        return parse_maps({k: v.float() for k, v in maps.items()})

    return step


def random_images(batch: int, device: str) -> torch.Tensor:
    """(B, 512, 512, 3) uint8, as ``preprocess`` returns them (the content does not matter)."""
    gen = torch.Generator().manual_seed(batch)
    shape = (batch, INPUT_SIZE, INPUT_SIZE, 3)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).to(device)


def mode_name(backbone: str, batch: int, precision: str, layout: str, run: str) -> str:
    parts = [BACKBONES[backbone], f"batch {batch}", precision]
    if layout == CHANNELS_LAST:
        parts.append(CHANNELS_LAST)
    return ", ".join([*parts, run])


def measure(
    setting: str,
    step: Callable[[], object],
    batch: int,
    runs: int,
    warmup: int,
    device: str,
    **fields: Any,
) -> dict[str, Any]:
    """Median time of ``step`` under inference_mode -> a result row (frames/s, time per frame)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    load = LoadMeter()
    with torch.inference_mode():
        seconds = median_seconds(step, runs, warmup, device)
    fps = batch / seconds
    row = {
        "setting": setting,
        **fields,
        "batch": batch,
        "runs": runs,
        "warmup": warmup,
        "seconds": seconds,
        "seconds_per_frame": seconds / batch,
        "frames_per_s": fps,
        "figure": f"{rate(fps)} frames/s ({per_frame(seconds / batch)})",
        "others_cpu_share": load.others_share(),
    }
    if device == "cuda":
        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"  {setting}: {row['figure']}", flush=True)
    return row


def bench_official(model: ACR, backbone: str, device: str) -> dict[str, Any]:
    """Mode 1, the official demo's: batch 1, fp32, contiguous, eager."""
    name = mode_name(backbone, 1, "fp32", "contiguous", "eager")
    if backbone == "hrnet":
        name = f"official mode ({name})"
    step = network_step(model, random_images(1, device), device)
    fields = {"backbone": backbone, "precision": "fp32", "memory_format": "contiguous"}
    runs, warmup = RUNS[device][0], WARMUP[device][0]
    return measure(name, step, 1, runs, warmup, device, **fields, compiled=False)


def bench_batched(model: ACR, backbone: str, device: str) -> list[dict[str, Any]]:
    """Mode 2: batched, channels_last (the model is converted), in fp32 and bf16 autocast."""
    runs, warmup = RUNS[device][1], WARMUP[device][1]
    batch = BATCH[device]
    model.to(memory_format=torch.channels_last)
    images = random_images(batch, device)
    step = network_step(model, images, device, channels_last=True)
    name = mode_name(backbone, batch, "fp32", CHANNELS_LAST, "eager")
    fields = {"backbone": backbone, "precision": "fp32", "memory_format": CHANNELS_LAST}
    rows = [measure(name, step, batch, runs, warmup, device, **fields, compiled=False)]

    fields = {**fields, "precision": "bf16"}
    if bf16_native(device):
        step = network_step(model, images, device, torch.bfloat16, channels_last=True)
        name = mode_name(backbone, batch, "bf16 autocast", CHANNELS_LAST, "eager")
        rows.append(measure(name, step, batch, runs, warmup, device, **fields, compiled=False))
    else:
        # Reference kernels: about 10-50 s a frame here, minutes for a whole batch.
        step = network_step(model, images[:1], device, torch.bfloat16, channels_last=True)
        name = mode_name(backbone, 1, "bf16 autocast", CHANNELS_LAST, "eager")
        name += ", no native bf16 on this CPU"
        note = (
            f"no oneDNN bf16 on this CPU: bf16 convolutions run torch's reference kernels; "
            f"measured at batch 1 with 1 timed run instead of batch {batch}"
        )
        rows.append(measure(name, step, 1, 1, 1, device, **fields, compiled=False, note=note))
    return rows


class time_limit:
    """Raise ``CompileTimeout`` in the main thread after ``seconds``, then every 5 s (SIGALRM;
    Unix): torch catches some exceptions while compiling, so one alarm may be swallowed."""

    def __init__(self, seconds: int):
        self.seconds = seconds
        self.expired = False

    def _alarm(self, signum, frame) -> None:
        self.expired = True
        raise CompileTimeout(f"compiling took longer than {self.seconds} s")

    def __enter__(self) -> time_limit:
        self.previous = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds, 5.0)
        return self

    def __exit__(self, *exc) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def bench_compiled(
    model: ACR, device: str, eager: dict[str, Any], freezing: bool = False
) -> list[dict[str, Any]]:
    """The batched mode (bf16 where native, else fp32) compiled with inductor: its defaults, or
    with ``freezing`` (weights folded in as constants, BatchNorm into the convolutions)."""
    batch = BATCH[device]
    dtype = torch.bfloat16 if bf16_native(device) else None
    precision = "bf16 autocast" if dtype else "fp32"
    fields = {
        "backbone": "hrnet",
        "precision": "bf16" if dtype else "fp32",
        "memory_format": CHANNELS_LAST,
        "inductor_options": {"freezing": True} if freezing else {},
    }
    if not dtype:
        fields["note"] = "no native bf16 on this CPU: the fp32 channels_last batch is compiled"
    images = random_images(batch, device)
    how = "torch.compile, freezing" if freezing else "torch.compile"
    label = mode_name("hrnet", batch, precision, CHANNELS_LAST, how)
    torch._dynamo.reset()
    with cold_inductor_cache("bench_acr_inductor_"):
        compiled = torch.compile(model, options=fields["inductor_options"] or None)
        step = network_step(compiled, images, device, dtype, channels_last=True)
        start, load = time.perf_counter(), LoadMeter()
        limit = time_limit(COMPILE_LIMIT_S)
        try:
            with limit, torch.inference_mode():
                step()
                synchronize(device)
            if limit.expired:  # an alarm was swallowed and the compile went on to the end
                raise CompileTimeout(f"compiling took longer than {COMPILE_LIMIT_S} s")
        except Exception as error:  # a timeout, or inductor failing on this machine
            elapsed = time.perf_counter() - start
            torch._dynamo.reset()
            return not_compiled(label, fields, limit.expired, error, elapsed)
        first_call, compile_load = time.perf_counter() - start, load.others_share()
        runs, warmup = RUNS[device][1], WARMUP[device][1]
        row = measure(label, step, batch, runs, warmup, device, **fields, compiled=True)
    torch._dynamo.reset()
    return compiled_rows(label, row, eager, first_call, compile_load)


@contextmanager
def cold_inductor_cache(prefix: str):
    """Inductor's cache in a new empty folder for the duration: cold, what a first run costs."""
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix=prefix) as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            yield cache
        finally:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
            if previous is not None:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


def not_compiled(label: str, fields: dict[str, Any], expired: bool, error: Exception,
                 elapsed: float) -> list[dict[str, Any]]:  # fmt: skip
    """The row of a compile that was given up (``expired``) or failed: eager stands."""
    if expired:
        reason = f"compiling took longer than {COMPILE_LIMIT_S} s on this machine"
    else:
        reason = f"compiling failed: {type(error).__name__}: {str(error).splitlines()[0]}"
    print(f"  {label}: not compiled ({reason})", flush=True)
    figure = f"not compiled: {reason} (gave up after {elapsed:.0f} s); eager used"
    return [{"setting": label, **fields, "compiled": False, "reason": reason,
             "compile_s": elapsed, "figure": figure}]  # fmt: skip


def compiled_rows(
    label: str,
    row: dict[str, Any],
    eager: dict[str, Any],
    first_call: float,
    compile_load: float,
    more: str = "",
    **extra: Any,
) -> list[dict[str, Any]]:
    """The compiled mode's row with its speed-up over ``eager``, and a row of its compile time
    (the first call less one timed run); ``extra`` fields go into both, ``more`` is appended
    to the compile time's figure."""
    speedup = eager["seconds"] / row["seconds"]
    row.update(speedup_vs_eager=speedup, helps=speedup > 1.05, **extra)
    row["figure"] += f"; {speedup:.2f}x eager"
    compile_s = max(first_call - row["seconds"], 0.0)
    compile_row = {
        "setting": f"compile time ({label}, cold cache)",
        "first_call_s": first_call,
        "compile_s": compile_s,
        **extra,
        "figure": f"{compile_s:.0f} s (first call {first_call:.0f} s){more}",
        "others_cpu_share": compile_load,
    }
    print(f"  {compile_row['setting']}: {compile_row['figure']}", flush=True)
    return [row, compile_row]


def bench_backend(model: ACR, device: str) -> dict[str, Any]:
    """The whole backend on the ACR demo frame: letterbox, network, parsing, two hands posed."""
    setting = "full ACRBackend, 1920x1080 frame (HRNet-W32, batch 1, fp32, eager, two hands)"
    if not FRAME.is_file():
        print(f"  {setting}: skipped, {FRAME} not found", flush=True)
        return {"setting": setting, "figure": f"skipped: {FRAME.name} not found"}
    frame = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    layer = HandLayer.from_models_dir(None, "openhand")
    backend = ACRBackend(model, layer, device, threshold=float("-inf"))
    hands = len(backend([frame])[0])
    runs, warmup = RUNS[device][0], WARMUP[device][0]
    fields = {"frame": f"{frame.shape[1]}x{frame.shape[0]}", "hands": hands, "threshold": "-inf"}
    return measure(setting, lambda: backend([frame]), 1, runs, warmup, device, **fields)


def main() -> None:
    device = device_args(__doc__.splitlines()[0]).device
    setup_torch(device)
    print("HRNet-W32", flush=True)
    hrnet = ACR.from_config(ACRConfig()).eval().to(device)
    results = [bench_official(hrnet, "hrnet", device)]
    rss = peak_rss_mib()
    setting = "peak RSS after the official mode (process)"
    results.append({"setting": setting, "mib": rss, "figure": f"{rss:.0f} MiB"})
    results.append(bench_backend(hrnet, device))
    batched = bench_batched(hrnet, "hrnet", device)
    results.extend(batched)
    print("ResNet-50", flush=True)
    resnet = ACR.from_config(ACRConfig(backbone="resnet")).eval().to(device)
    results.append(bench_official(resnet, "resnet", device))
    results.extend(bench_batched(resnet, "resnet", device))
    del resnet
    print("torch.compile", flush=True)
    eager = batched[1] if bf16_native(device) else batched[0]
    results.extend(bench_compiled(hrnet, device, eager))
    results.extend(bench_compiled(hrnet, device, eager, freezing=True))
    write_with_memory("acr", device, results)


if __name__ == "__main__":
    main()
