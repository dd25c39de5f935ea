"""``handmocap data``: ``synth`` renders a dataset (Blender in a subprocess), ``preview`` draws
its samples with their labels into a PNG grid of the expected size; missing folders and
readers give one clear error line."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest

from handmocap.core.errors import HandmocapError
from handmocap.training.commands import data
from handmocap.training.datasets.synthetic import SyntheticDataset

SIZE, CELL = 64, 48
needs_bpy = pytest.mark.skipif(
    importlib.util.find_spec("bpy") is None,
    reason="the bpy module renders the dataset (make test installs it)",
)


def run_data(*argv: str) -> int:
    """The command as ``handmocap data`` runs it (errors: one line, status 2, as ``cli``)."""
    parser = argparse.ArgumentParser(prog="handmocap data")
    data.add_arguments(parser)
    args = parser.parse_args([str(a) for a in argv])
    try:
        return data.run(args)
    except HandmocapError as exc:
        print(f"handmocap data: error: {exc}")
        return 2


def test_registered_with_the_command_line():
    from handmocap.core.cli import build_parser

    args = build_parser().parse_args(["data", "preview", "somewhere", "--out", "x.png"])
    assert args.data_command == "preview" and args.count == 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synth"
    code = run_data("synth", "--out", root, "--count", 3, "--size", SIZE, "--seed", 5,
                    "--shard-size", 2, "--samples", 4)  # fmt: skip
    assert code == 0
    return root


@needs_bpy
@pytest.mark.slow
def test_synth_writes_a_dataset(dataset, capsys):
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["count"] == 3 and manifest["size"] == SIZE and manifest["seed"] == 5
    assert manifest["options"]["samples"] == 4
    assert sorted(p.name for p in dataset.glob("shard_*.npz")) == [
        "shard_00000.npz",
        "shard_00001.npz",
    ]
    assert run_data("synth", "--out", dataset, "--count", 3, "--size", SIZE, "--seed", 5,
                    "--shard-size", 2, "--samples", 4) == 0  # fmt: skip
    assert "3 samples" in capsys.readouterr().out  # finished already: nothing rendered again


@needs_bpy
@pytest.mark.slow
def test_synth_rebuilds_a_lost_manifest_from_its_shards(dataset, tmp_path, capsys):
    """Shards hold samples by index, so a stopped run's finished shards (its manifest lost or
    deleted) become a smaller dataset without rendering anything again."""
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    (copy / "manifest.json").unlink()
    kept = (copy / "shard_00000.npz").stat().st_mtime_ns
    assert run_data("synth", "--out", copy, "--count", 2, "--size", SIZE, "--seed", 5,
                    "--shard-size", 2, "--samples", 4) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    assert (copy / "shard_00000.npz").stat().st_mtime_ns == kept
    assert len(SyntheticDataset(copy)) == 2


@needs_bpy
@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 3, 16])
def test_preview_writes_a_grid(dataset, tmp_path, count, capsys):
    out = tmp_path / "grid.png"
    assert run_data("preview", dataset, "--out", out, "--count", count, "--cell", CELL) == 0
    image = cv2.imread(str(out))
    shown = min(count, 3)
    assert image.shape[:2] == data.grid_shape(shown, CELL)
    assert f"{shown} samples" in capsys.readouterr().out
    # every drawn sample's first panel (image + joints) is a picture, not blank paper
    for n in range(shown):
        row, col = n // 2, (n % 2) * len(data.PANELS)
        panel = image[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL]
        assert panel.std() > 5


def test_preview_draws_labels():
    """A hand-made sample: the skeleton is drawn in its side's colour, masks and segmentation
    where the labels say."""
    from handmocap.training.sample import empty_sample

    sample = empty_sample(SIZE)
    sample["image"][:] = 128
    sample["hand_valid"][1] = 1
    sample["joints2d"][1, :, :2] = np.linspace(10, 50, 21)[:, None]
    sample["joints2d"][1, :, 2] = 1
    sample["part_seg"][20:30, 20:30] = 3  # right hand, part 2
    sample["part_seg"][40:50, 40:50] = 20  # left hand, part 3
    panels, _ = data.sample_panels(sample, SIZE)
    joints, _, masks = (panels[:, k * SIZE : (k + 1) * SIZE] for k in range(3))
    assert (np.abs(joints.astype(int) - data.SKELETON_COLORS["right"]).sum(-1) < 30).sum() > 20
    np.testing.assert_array_equal(masks[25, 25], data.SKELETON_COLORS["right"])
    np.testing.assert_array_equal(masks[45, 45], data.SKELETON_COLORS["left"])
    np.testing.assert_array_equal(masks[35, 10], (0, 0, 0))


def test_missing_dataset_folder(tmp_path, capsys):
    missing = tmp_path / "missing"
    for kind in data.KINDS:
        assert run_data("preview", missing, "--out", tmp_path / "g.png", "--kind", kind) == 2
        err = capsys.readouterr().out
        assert "not found" in err and str(missing) in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_data("preview", empty, "--out", tmp_path / "g.png") == 2
    assert "manifest.json" in capsys.readouterr().out
    assert not (tmp_path / "g.png").exists()


def test_reader_without_data(tmp_path, capsys):
    """InterHand2.6M's reader (or its absence) on an empty folder: one clear error line."""
    empty = tmp_path / "interhand"
    empty.mkdir()
    assert run_data("preview", empty, "--out", tmp_path / "g.png", "--kind", "interhand") == 2
    assert "interhand" in capsys.readouterr().out.lower()
