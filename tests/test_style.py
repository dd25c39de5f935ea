"""The code follows the project's one formatter and linter (ruff, 100 columns)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["core", "training", "blender_addon", "tests", "bench"]


def ruff() -> str:
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed in this environment (make test installs it)")
    return found


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    folders = [f for f in FOLDERS if (ROOT / f).is_dir()]
    result = subprocess.run(
        [ruff(), *command, *folders], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
