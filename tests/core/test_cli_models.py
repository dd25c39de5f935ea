"""The ``handmocap`` command: ``models``, ``draw-model``, ``--help``/``--version``, and no bpy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from handmocap.core import __version__
from handmocap.core.cli import main
from handmocap.core.handmodel import MODELS_ENV, open_model_path
from handmocap.core.models_dir import BACKENDS


def run_json(capsys, *argv: str) -> dict:
    assert main(["models", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def by_name(items: list[dict], key: str = "name") -> dict[str, dict]:
    return {item[key]: item for item in items}


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(MODELS_ENV, raising=False)


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """A models folder with both MANO files (the open model's pickles, same key layout) and ACR's
    checkpoint, but no DIR checkpoint."""
    root = tmp_path / "models"
    (root / "mano").mkdir(parents=True)
    shutil.copyfile(open_model_path("right"), root / "mano" / "MANO_RIGHT.pkl")
    shutil.copyfile(open_model_path("left"), root / "mano" / "MANO_LEFT.pkl")
    (root / "acr").mkdir()
    (root / "acr" / "wild.pkl").write_bytes(b"not really a checkpoint")
    return root


# --------------------------------------------------------------------------------------------
# handmocap models
# --------------------------------------------------------------------------------------------


def test_models_json_without_models_folder(capsys, no_env):
    report = run_json(capsys)
    assert report["models_dir"] is None
    hand = by_name(report["hand_models"])
    assert hand["openhand"]["available"] is True
    assert [Path(f).name for f in hand["openhand"]["files"]] == [
        "OPENHAND_LEFT.pkl",
        "OPENHAND_RIGHT.pkl",
    ]
    assert all(Path(f).is_file() for f in hand["openhand"]["files"])
    assert hand["mano"]["available"] is False
    assert hand["mano"]["files"] == []
    assert "no models folder" in hand["mano"]["missing"][0]
    checkpoints = by_name(report["checkpoints"], "backend")
    assert set(checkpoints) == {"acr", "dir"}
    assert checkpoints["acr"]["file"] == "acr/wild.pkl"
    assert checkpoints["dir"]["file"] == "dir/DIR.pth"
    for c in report["checkpoints"]:
        assert c["found"] is False and c["path"] is None
    backends = by_name(report["backends"])
    assert set(backends) == set(BACKENDS) == {"acr", "dir", "mediapipe"}
    # every backend is built; mediapipe needs no file (make test installs it)
    assert all(backends[b]["code_present"] for b in ("acr", "dir", "mediapipe"))
    # acr runs handmocap's own weights while the official ones are missing; dir has no fallback
    acr = backends["acr"]
    assert acr["ready"] is True and "own light ACR weights" in acr["fallback"]
    assert backends["dir"]["ready"] is False and backends["dir"]["fallback"] == ""
    assert backends["mediapipe"]["ready"] is True and backends["mediapipe"]["missing"] == []
    [shipped] = report["shipped"]
    assert shipped["backend"] == "acr" and shipped["found"] and Path(shipped["file"]).is_file()
    assert Path(shipped["about"]).is_file()
    assert any("wild.pkl" in m for m in backends["acr"]["missing"])
    assert any("MANO_RIGHT.pkl" in m for m in backends["acr"]["missing"])
    assert any("DIR.pth" in m for m in backends["dir"]["missing"])


def check_full_folder(report: dict, root: Path) -> None:
    assert report["models_dir"] == str(root)
    hand = by_name(report["hand_models"])
    assert hand["openhand"]["available"] is True
    assert hand["mano"]["available"] is True
    assert hand["mano"]["missing"] == []
    assert sorted(hand["mano"]["files"]) == sorted(
        str(root / "mano" / n) for n in ("MANO_LEFT.pkl", "MANO_RIGHT.pkl")
    )
    checkpoints = by_name(report["checkpoints"], "backend")
    assert checkpoints["acr"]["found"] is True
    assert checkpoints["acr"]["path"] == str(root / "acr" / "wild.pkl")
    assert checkpoints["dir"]["found"] is False
    assert checkpoints["dir"]["path"] is None
    backends = by_name(report["backends"])
    assert backends["acr"]["missing"] == [] and backends["acr"]["fallback"] == ""
    assert backends["acr"]["ready"] is True
    assert len(backends["dir"]["missing"]) == 1
    assert str(root / "dir" / "DIR.pth") in backends["dir"]["missing"][0]


def test_models_json_with_flag(capsys, no_env, models_dir):
    check_full_folder(run_json(capsys, "--models", str(models_dir)), models_dir)


def test_models_json_with_env_var(capsys, monkeypatch, models_dir):
    monkeypatch.setenv(MODELS_ENV, str(models_dir))
    check_full_folder(run_json(capsys), models_dir)


def test_models_flag_overrides_env_var(capsys, monkeypatch, models_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(MODELS_ENV, str(empty))
    check_full_folder(run_json(capsys, "--models", str(models_dir)), models_dir)


def test_models_one_mano_file_is_not_enough(capsys, no_env, tmp_path):
    (tmp_path / "mano").mkdir()
    shutil.copyfile(open_model_path("right"), tmp_path / "mano" / "MANO_RIGHT.pkl")
    mano = by_name(run_json(capsys, "--models", str(tmp_path))["hand_models"])["mano"]
    assert mano["available"] is False
    assert mano["files"] == [str(tmp_path / "mano" / "MANO_RIGHT.pkl")]
    assert mano["missing"] == [str(tmp_path / "mano" / "MANO_LEFT.pkl")]


def test_models_plain_text_names_what_is_missing(capsys, no_env, tmp_path):
    assert main(["models", "--models", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"models folder: {tmp_path}"
    assert any(line.split() == ["openhand", "available"] for line in lines)
    mano = next(line for line in lines if line.split()[:1] == ["mano"])
    assert "missing" in mano
    assert str(tmp_path / "mano" / "MANO_RIGHT.pkl") in mano
    assert str(tmp_path / "mano" / "MANO_LEFT.pkl") in mano
    assert any(line.split() == ["acr", "acr/wild.pkl", "not", "found"] for line in lines)
    assert any(line.split() == ["dir", "dir/DIR.pth", "not", "found"] for line in lines)
    assert str(tmp_path / "acr" / "wild.pkl") in out
    assert str(tmp_path / "dir" / "DIR.pth") in out  # what the dir backend lacks
    assert any(line.split() == ["mediapipe", "ready"] for line in lines)


def test_models_plain_text_without_folder(capsys, no_env):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "(none: pass --models or set HANDMOCAP_MODELS)" in out
    assert any(line.split() == ["openhand", "available"] for line in out.splitlines())


def test_models_folder_that_does_not_exist(capsys, no_env, tmp_path):
    missing = tmp_path / "nowhere"
    assert main(["models", "--models", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("handmocap models: error:")
    assert str(missing) in err[0]


def test_models_env_var_folder_that_does_not_exist(capsys, monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(MODELS_ENV, str(missing))
    assert main(["models", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(missing) in captured.err


def test_models_folder_that_is_a_file(capsys, no_env, tmp_path):
    file = tmp_path / "models.txt"
    file.write_text("x")
    assert main(["models", "--models", str(file)]) == 2
    assert str(file) in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# handmocap draw-model
# --------------------------------------------------------------------------------------------

CELL = 120
HEADER = 34
BACKGROUND = 250


def cell(image: np.ndarray, row: int, col: int) -> np.ndarray:
    """One picture cell, without its top strip (where the label is written)."""
    y = HEADER + row * CELL
    return image[y + 30 : y + CELL, col * CELL : (col + 1) * CELL].astype(np.int16)


def test_draw_model_writes_the_model_sheet(capsys, no_env, tmp_path):
    out = tmp_path / "sub" / "x.png"
    assert main(["draw-model", "--out", str(out), "--cell", str(CELL)]) == 0
    assert str(out) in capsys.readouterr().out
    image = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert image is not None
    assert image.shape == (HEADER + 6 * CELL, 4 * CELL, 3)
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 200
    # Rows: flat, relaxed, spread, pinch, point, fist; columns: right back, right side,
    # left back, left side.
    right_flat_back, right_fist_back = cell(image, 0, 0), cell(image, 5, 0)
    left_flat_back = cell(image, 0, 2)
    for c in (right_flat_back, right_fist_back, left_flat_back):
        hand = np.abs(c - BACKGROUND).max(axis=2) > 30
        assert 0.08 < hand.mean() < 0.8  # a hand is there, and it fits in its cell
    # A fist looks nothing like a flat hand.
    changed = np.abs(right_flat_back - right_fist_back).max(axis=2) > 40
    assert changed.mean() > 0.1
    # The left hand's view is mirrored so that both hands look alike.
    alike = np.abs(right_flat_back - left_flat_back).max(axis=2) > 40
    assert alike.mean() < changed.mean() / 3


# --------------------------------------------------------------------------------------------
# --help, --version, imports
# --------------------------------------------------------------------------------------------


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: handmocap")
    for command in ("models", "info", "draw-model"):
        assert command in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"handmocap {__version__}"


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import handmocap.core
bad = {"bpy", "mathutils"}
assert not bad & set(sys.modules), "handmocap.core"
names = ["handmocap.core"]
for info in pkgutil.walk_packages(handmocap.core.__path__, "handmocap.core."):
    importlib.import_module(info.name)
    names.append(info.name)
    found = bad & set(sys.modules)
    assert not found, (info.name, found)
print("\\n".join(names))
"""


def test_core_never_imports_bpy_or_mathutils():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported = set(result.stdout.split())
    for module in (
        "handmocap.core.cli",
        "handmocap.core.joints",
        "handmocap.core.handmodel",
        "handmocap.core.models_dir",
        "handmocap.core.render",
        "handmocap.core.picture",
        "handmocap.core.commands.models",
        "handmocap.core.commands.draw_model",
        "handmocap.core.openhand.generate",
    ):
        assert module in imported


def test_check_reports_torch_devices_and_ready_backends(capsys, no_env, models_dir):
    assert main(["check", "--json", "--models", str(models_dir)]) == 0
    facts = json.loads(capsys.readouterr().out)
    import torch

    assert facts["torch"] == torch.__version__ and facts["python"] == sys.executable
    assert facts["cuda"]["available"] == torch.cuda.is_available()
    assert facts["models_dir"] == str(models_dir)
    backends = by_name(facts["backends"])
    assert backends["acr"]["ready"] and not backends["dir"]["ready"]  # ACR's files are there
    assert main(["check", "--models", str(models_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "backends ready: acr" in lines[0] and lines[1].startswith("  dir: needs ")


def test_check_refuses_a_models_folder_that_is_not_there(capsys, no_env, tmp_path):
    assert main(["check", "--models", str(tmp_path / "nowhere")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
