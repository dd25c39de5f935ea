"""handmocap preview: the take's hands over its real footage, as a video and a sheet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from handmocap.core import cli

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
ASL = REALDATA / "tfjs_models_hand_pose" / "asl_hand.25fps.mp4"
pytestmark = pytest.mark.skipif(not ASL.is_file(), reason=f"real data not present: {REALDATA}")


@pytest.fixture(scope="module")
def take(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preview") / "asl.take"
    env = {**os.environ, "HANDMOCAP_MODELS": ""}
    subprocess.run(
        [sys.executable, "-m", "handmocap.core.cli", "capture", str(ASL), "-o", str(path),
         "--backend", "mediapipe", "--end", "24", "--batch", "24", "--progress", "none"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("smoothing", ["offline", "none"])
def test_preview_video_and_sheet(take, tmp_path, capsys, smoothing):
    video, sheet = tmp_path / "p.mp4", tmp_path / "s.png"
    args = ["preview", str(take), "-o", str(video), "--sheet", str(sheet), "--smoothing", smoothing]
    assert cli.main(args) == 0
    assert "24 frames" in capsys.readouterr().out
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 24 and frames[0].shape == (1080, 620, 3)
    # the hand was drawn over the footage: the first frame differs from the source frame
    cap = cv2.VideoCapture(str(ASL))
    source = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
    changed = np.abs(frames[0].astype(int) - source).sum(-1) > 60
    assert changed.mean() > 0.01
    drawn = cv2.imread(str(sheet))
    assert drawn is not None and drawn.shape[1] == 1600


def test_preview_errors(take, tmp_path, capsys):
    assert cli.main(["preview", str(take), "--smoothing", "heavy"]) == 2
    assert "--smoothing" in capsys.readouterr().err
    assert cli.main(["preview", str(tmp_path / "none.take")]) == 2
