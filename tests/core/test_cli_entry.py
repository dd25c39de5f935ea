"""The console script's exit: status codes and output survive its quick exit."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handmocap.core.cli", *args], capture_output=True, text=True
    )


def test_success_prints_everything_and_exits_0():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("handmocap ")
    done = run("models", "--json")  # a longer output, all of it flushed before the exit
    assert done.returncode == 0 and done.stdout.rstrip().endswith("}")


def test_errors_exit_2_with_one_line(tmp_path):
    done = run("info", str(tmp_path / "missing.take"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert run("no-such-command").returncode == 2  # argparse's own error
