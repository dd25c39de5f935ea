"""``handmocap info TAKE [--json]`` through the real command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handmocap.core.cli import main
from handmocap.core.take import HandStatus, TakeManifest, TakeWriter, blank_frames


def write_take(path: Path, count: int = 90, complete: bool = True) -> None:
    """A 30 fps take whose left hand is present on even frames and right hand on every third."""
    frames = blank_frames(np.arange(count), np.arange(count) / 30.0)
    for side, every in (("left", 2), ("right", 3)):
        rows = np.arange(count) % every == 0
        frames[f"{side}_present"][rows] = True
        frames[f"{side}_status"][rows] = HandStatus.OK
        frames[f"{side}_joints3d"][rows] = 0.1
    manifest = TakeManifest(
        fps=30.0,
        width=1920,
        height=1080,
        backend="acr",
        hand_model="openhand-v1",
        focal_length=1500.0,
        frame_count=120,
        checkpoint="wild.pkl",
    )
    writer = TakeWriter(path, manifest, chunk_size=32)
    writer.append(frames)
    if complete:
        writer.close()
    else:
        del writer  # killed: what is on disk stays, the take is incomplete


def test_info_plain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_take(tmp_path / "clip.take")
    assert main(["info", str(tmp_path / "clip.take")]) == 0
    out = capsys.readouterr().out
    assert "[complete]" in out
    assert "90 of 120 expected, 3.00 s at 30 fps, 3 chunks" in out
    assert "1920 x 1080" in out
    assert "acr, checkpoint wild.pkl, hand model openhand-v1" in out
    assert "0 in 30 frames, 1 in 45, 2 in 15" in out
    assert "left 50.0 %, right 33.3 %" in out
    # left present on even frames: 45 one-frame gaps; right every third frame: 30 gaps of 2
    assert "gaps left   45, longest 1 frames; missing frames: 45 not detected" in out
    assert "gaps right  30, longest 2 frames" in out
    assert "one-euro-acr" in out and "offline" in out  # smoothing presets available


def test_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_take(tmp_path / "clip.take")
    assert main(["info", str(tmp_path / "clip.take"), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object on one line
    summary = json.loads(out)
    assert summary["frames"] == 90 and summary["chunks"] == 3 and summary["complete"] is True
    assert summary["fps"] == 30.0 and summary["duration_s"] == pytest.approx(3.0)
    assert summary["gaps"]["right"] == {"count": 30, "longest": 2, "frames": 60}
    assert (summary["width"], summary["height"]) == (1920, 1080)
    assert summary["backend"] == "acr" and summary["hand_model"] == "openhand-v1"
    assert summary["checkpoint"] == "wild.pkl"
    assert summary["hands_per_frame"] == {"0": 30, "1": 45, "2": 15}
    assert summary["detection_rate"] == {"left": 0.5, "right": pytest.approx(1 / 3)}


def test_info_incomplete_take(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_take(tmp_path / "clip.take", count=70, complete=False)
    assert main(["info", str(tmp_path / "clip.take"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["complete"] is False and summary["frames"] == 64
    assert main(["info", str(tmp_path / "clip.take")]) == 0
    assert "incomplete" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["manifest", "chunk", "missing"])
def test_info_bad_take(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    take_dir = tmp_path / "clip.take"
    write_take(take_dir)
    if damage == "manifest":
        bad = take_dir / "manifest.json"
        bad.write_text('{"format": "handmocap-take", "format_version": 7}')
    elif damage == "chunk":
        bad = take_dir / "chunks" / "00000032-00000063.npz"
        bad.write_bytes(bad.read_bytes()[:500])
    else:
        bad = tmp_path / "nowhere.take"
    target = bad if damage == "missing" else take_dir
    for extra in ([], ["--json"]):
        assert main(["info", str(target), *extra]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("handmocap info: error: ")
        assert str(bad) in lines[0]
