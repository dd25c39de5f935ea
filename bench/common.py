"""Shared pieces of the benchmarks: timing, memory, the machine and versions, result files.

A result file ``bench/results/<name>-<device>.json`` holds::

    {"benchmark": name, "device": "cpu" | "cuda", "environment": {...},
     "results": [{"setting": ..., "figure": "1.2 ms (830 frames/s)", <numbers>...}, ...]}

``bench/run_all.py`` builds ``bench/results/TABLE.md`` from every such file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CPU_THREADS = 2  # as on CI: 2 cores, no GPU


def _cpu_seconds() -> tuple[float, float, float]:
    """(machine busy, machine steal, this process) CPU seconds so far (Linux; zeros elsewhere)."""
    own = os.times().user + os.times().system
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0, own
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz, own


_START = (time.monotonic(), *_cpu_seconds())


def other_load() -> dict[str, float]:
    """How busy the machine was with other work since this module was imported.

    ``others_cpu_share``: CPU used by other processes, as a share of all cores (0 on an idle
    machine; 0.5 means one of two cores was busy elsewhere); ``steal_share``: time the
    hypervisor gave to other virtual machines. Either well above 0 makes timings slower.
    """
    start, busy0, steal0, own0 = _START
    busy, steal, own = _cpu_seconds()
    capacity = (time.monotonic() - start) * (os.cpu_count() or 1)
    return {
        "others_cpu_share": round(max(0.0, busy - busy0 - (own - own0)) / capacity, 3),
        "steal_share": round((steal - steal0) / capacity, 3),
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str) -> dict[str, Any]:
    """The machine, the device and the versions that the figures depend on."""
    import torch

    cuda_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        **other_load(),
        "cuda_device": cuda_name,
        "cuda_version": torch.version.cuda,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "smplx": _version("smplx"),
        "opencv": _version("opencv-python-headless") or _version("opencv-python"),
        "handmocap": _version("handmocap"),
        "platform": platform.platform(),
    }


def setup_torch(device: str) -> None:
    """Pin the CPU thread count to CI's; refuse ``cuda`` on a machine without it."""
    import torch

    torch.set_num_threads(CPU_THREADS)
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device on this machine")


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def median_seconds(
    fn: Callable[[], object], runs: int, warmup: int = 2, device: str = "cpu"
) -> float:
    """Median wall time of ``fn()`` over ``runs`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_args(description: str, devices: tuple[str, ...] = ("cpu", "cuda")) -> argparse.Namespace:
    """The command line every benchmark takes: ``--device`` (one of ``devices``, default cpu)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", choices=devices, default="cpu")
    return parser.parse_args()


def write_with_memory(name: str, device: str, results: list[dict[str, Any]]) -> Path:
    """Append the process's peak RSS (and on CUDA the largest peak CUDA memory of the rows),
    then ``write_results``."""
    rss = peak_rss_mib()
    results.append({"setting": "peak RSS (process)", "mib": rss, "figure": f"{rss:.0f} MiB"})
    if device == "cuda":
        peak = max(r.get("cuda_peak_mib", 0.0) for r in results)
        results.append({"setting": "peak CUDA memory", "mib": peak, "figure": f"{peak:.0f} MiB"})
    return write_results(name, device, results)


def write_results(name: str, device: str, results: list[dict[str, Any]]) -> Path:
    """Write ``bench/results/<name>-<device>.json`` and print its figures."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{device}.json"
    data = {
        "benchmark": name,
        "device": device,
        "environment": environment(device),
        "results": results,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    for row in results:
        print(f"{name} [{device}] {row['setting']}: {row['figure']}")
    return path
