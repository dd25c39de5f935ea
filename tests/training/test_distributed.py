"""Data-parallel training: two CPU processes (gloo, through torchrun) with the global batch
split between them end where one process with the whole batch ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
STEPS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run([*args, str(HERE / "ddp_run.py"), str(out), str(STEPS)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    run([sys.executable], tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--master-addr", "127.0.0.1", "--master-port", str(free_port())]  # fmt: skip
    run(torchrun, tmp_path / "two")
    one = torch.load(tmp_path / "one" / "weights.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "weights.pt", weights_only=True)
    start = torch.load(tmp_path / "one" / "start.pt", weights_only=True)
    assert torch.load(tmp_path / "two" / "last.pt", weights_only=True)["step"] == STEPS
    moved = 0
    for name, value in one.items():
        if value.is_floating_point():
            torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)
            moved += float((value - start[name]).abs().max()) > 1e-3  # 100x the tolerance
    assert moved > 50  # the runs trained: most tensors moved far more than they differ
