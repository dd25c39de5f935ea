"""Run every benchmark, each in its own process, then rebuild ``bench/results/TABLE.md``.

    .venv/bin/python bench/run_all.py               # all (HandLayer, ACR, DIR on CUDA too if any)
    .venv/bin/python bench/run_all.py --table-only  # only rebuild the table from the JSON files

The table is built from every ``bench/results/*.json``, so figures measured on other machines
(a GPU machine, say) that were copied there appear beside this machine's. The same table is
placed in ``bench/README.md`` and the top-level ``README.md`` between their table markers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS_DIR

BENCH_DIR = Path(__file__).resolve().parent
# Files whose results table is regenerated between the two markers.
READMES = (BENCH_DIR / "README.md", BENCH_DIR.parent / "README.md")
TABLE_START, TABLE_END = "<!-- results table: start -->", "<!-- results table: end -->"
JOBS = (
    ("bench_handlayer.py", "cpu"),
    ("bench_take.py", "cpu"),
    ("bench_render.py", "cpu"),
    ("bench_acr.py", "cpu"),
    ("bench_dir.py", "cpu"),
    ("bench_mediapipe.py", "cpu"),
    ("bench_smoothing.py", "cpu"),
    ("bench_capture.py", "cpu"),
    ("bench_bake.py", "cpu"),
    ("bench_train.py", "cpu"),
)
CUDA_JOBS = (
    ("bench_handlayer.py", "cuda"),
    ("bench_acr.py", "cuda"),
    ("bench_dir.py", "cuda"),
    ("bench_train.py", "cuda"),
)
VERSION_KEYS = ("torch", "numpy", "smplx", "opencv", "python")


def jobs() -> list[tuple[str, str]]:
    """The benchmarks to run: all on the CPU; HandLayer, ACR and DIR on CUDA when torch sees a
    GPU."""
    import torch

    extra = list(CUDA_JOBS) if torch.cuda.is_available() else []
    return [*JOBS, *extra]


def run(script: str, device: str) -> None:
    start = time.perf_counter()
    print(f"== {script} --device {device}", flush=True)
    subprocess.run([sys.executable, str(BENCH_DIR / script), "--device", device], check=True)
    print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)


def describe_device(env: dict[str, Any]) -> str:
    if env["device"] == "cuda":
        return f"cuda: {env['cuda_device']}"
    return f"cpu: {env['cpu']}, {env['cpu_available']} cores, {env['torch_threads']} threads"


def describe_versions(env: dict[str, Any]) -> str:
    parts = [f"{key} {env[key]}" for key in VERSION_KEYS if env.get(key)]
    return ", ".join(parts) + f"; {env['date'][:10]}"


def table_rows(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    env = data["environment"]
    return [
        f"| {data['benchmark']} | {row['setting']} | {row['figure']} | {describe_device(env)} "
        f"| {describe_versions(env)} |"
        for row in data["results"]
    ]


def load_note(path: Path) -> str:
    env = json.loads(path.read_text())["environment"]
    return f"{env.get('others_cpu_share', 0):.0%} / {env.get('steal_share', 0):.0%}"


def build_table() -> str:
    files = sorted(RESULTS_DIR.glob("*.json"))
    lines = [
        "| benchmark | setting | figure | device | versions |",
        "|---|---|---|---|---|",
        *(line for path in files for line in table_rows(path)),
    ]
    loads = [f"{path.stem} {load_note(path)}" for path in files]
    note = (
        "Other work on the machine during each run (CPU share of other processes and stolen by "
        "the hypervisor; near 0 means the figures are undisturbed): "
    )
    return "\n".join(lines) + "\n\n" + note + ", ".join(loads) + ".\n"


def write_table() -> str:
    table = build_table()
    header = "# Benchmark results\n\nMade by `bench/run_all.py` from `bench/results/*.json`.\n\n"
    (RESULTS_DIR / "TABLE.md").write_text(header + table)
    for readme in READMES:
        text = readme.read_text() if readme.is_file() else ""
        if TABLE_START in text and TABLE_END in text:
            head, rest = text.split(TABLE_START, 1)
            tail = rest.split(TABLE_END, 1)[1]
            readme.write_text(f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table")
    args = parser.parse_args()
    if not args.table_only:
        start = time.perf_counter()
        for script, device in jobs():
            run(script, device)
        print(f"all benchmarks: {time.perf_counter() - start:.0f} s")
    print(write_table())


if __name__ == "__main__":
    main()
