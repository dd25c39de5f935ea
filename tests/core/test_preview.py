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
from handmocap.core.take import read_take

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


@pytest.mark.parametrize(
    ("smoothing", "height", "shape"),
    [("offline", None, (720, 414, 3)), ("none", 0, (1080, 620, 3))],
    ids=["offline-720", "none-full-size"],
)
def test_preview_video_and_sheet(take, tmp_path, capsys, smoothing, height, shape):
    video, sheet = tmp_path / "p.mp4", tmp_path / "s.png"
    args = ["preview", str(take), "-o", str(video), "--sheet", str(sheet), "--smoothing", smoothing]
    assert cli.main(args + ([] if height is None else ["--height", str(height)])) == 0
    assert "24 frames" in capsys.readouterr().out
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 24 and frames[0].shape == shape  # taller footage: 720 px by default
    # the hand was drawn over the footage, where it is: compare with the source frame
    cap = cv2.VideoCapture(str(ASL))
    source = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
    source = cv2.resize(source, shape[1::-1], interpolation=cv2.INTER_AREA)
    changed = np.abs(frames[0].astype(int) - source).sum(-1) > 60
    assert changed.mean() > 0.01
    marks = read_take(take).hand("right")["joints2d"][0] * shape[0] / 1080
    changed[: shape[0] // 12] = False  # the frame number written at the top
    rows, cols = np.nonzero(changed)
    assert changed.mean() < 0.3  # the hand, not the whole picture
    margin = 0.02 * shape[0]
    assert (marks[:, 0] > cols.min() - margin).all() and (marks[:, 0] < cols.max() + margin).all()
    assert (marks[:, 1] > rows.min() - margin).all() and (marks[:, 1] < rows.max() + margin).all()
    drawn = cv2.imread(str(sheet))
    assert drawn is not None and drawn.shape[1] == 1600


def test_preview_errors(take, tmp_path, capsys):
    assert cli.main(["preview", str(take), "--smoothing", "heavy"]) == 2
    assert "--smoothing" in capsys.readouterr().err
    assert cli.main(["preview", str(tmp_path / "none.take")]) == 2


def test_preview_height_must_make_sense(take, capsys):
    assert cli.main(["preview", str(take), "--height", "1"]) == 2
    assert "--height" in capsys.readouterr().err
