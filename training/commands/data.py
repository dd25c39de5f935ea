"""``handmocap data``: make the synthetic dataset, and look at any dataset's samples.

``handmocap data synth --out DIR --count N`` renders samples with Blender (resumable: run it
again to finish a stopped run); ``handmocap data preview DATASET --out grid.png`` draws samples
with their labels: skeletons, part segmentation, hand masks, dense map and ACR's centre maps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAME = "data"
HELP = "make the synthetic dataset (synth) or draw a dataset's samples with labels (preview)"
KINDS = ("synthetic", "interhand", "freihand")
PANELS = ("image + joints", "part segmentation", "hand masks", "dense map", "centre maps")
SKELETON_COLORS = {"left": (60, 130, 255), "right": (255, 120, 40)}  # RGB, per side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    synth = sub.add_parser("synth", help="render the synthetic dataset into a folder")
    synth.add_argument("--out", type=Path, required=True, help="dataset folder")
    synth.add_argument("--count", type=int, required=True, help="number of samples")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="fixes every sample")
    synth.add_argument("--workers", type=int, default=1, help="Blender processes side by side")
    synth.add_argument("--shard-size", type=int, default=256, help="samples per shard file")
    synth.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    preview = sub.add_parser("preview", help="draw samples with their labels into a PNG grid")
    preview.add_argument("dataset", type=Path, help="dataset folder")
    preview.add_argument("--out", type=Path, required=True, help="PNG to write")
    preview.add_argument("--count", type=int, default=16, help="number of samples drawn")
    preview.add_argument("--kind", choices=KINDS, default="synthetic", help="dataset kind")
    preview.add_argument("--split", default="train", help="the reader's split (not synthetic)")
    preview.add_argument("--size", type=int, default=256, help="sample size (not synthetic)")
    preview.add_argument("--cell", type=int, default=160, help="size of one picture, px")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        return _synth(args)
    return _preview(args)


def _synth(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import replace

    from tqdm import tqdm

    from handmocap.training.datasets.synthetic import SceneOptions, generate

    options = replace(SceneOptions(), samples=args.samples)
    with tqdm(unit="img", file=sys.stderr, desc="synth", dynamic_ncols=True) as bar:

        def progress(done: int, total: int, rate: float) -> None:
            if bar.total is None:  # the clock starts with the first image, not with Blender
                bar.reset(total=total)
            bar.update(done - bar.n)
            bar.set_postfix_str(f"{rate:.2f} images/s", refresh=False)

        manifest = generate(
            args.out,
            args.count,
            size=args.size,
            seed=args.seed,
            workers=args.workers,
            progress=progress,
            shard_size=args.shard_size,
            options=options,
        )
    rate = manifest.get("images_per_second")
    speed = f", {rate:.2f} images/s" if rate else ""
    print(
        f"wrote {args.out}: {manifest['count']} samples of {manifest['size']} px in "
        f"{len(manifest['shards'])} shard(s) ({manifest.get('renderer_version', 'Blender')}{speed})"
    )
    return 0


def open_for_preview(kind: str, root: Path, split: str, size: int):
    """The reader of ``kind`` at ``root``; clear errors for a missing folder or reader."""
    from handmocap.core.errors import HandmocapError

    if not root.exists():
        raise HandmocapError(f"dataset folder not found: {root}")
    if kind == "synthetic":
        from handmocap.training.datasets.synthetic import SyntheticDataset

        return SyntheticDataset(root)
    module, name = {
        "interhand": ("interhand", "InterHandDataset"),
        "freihand": ("freihand", "FreiHANDDataset"),
    }[kind]
    try:
        reader = getattr(__import__(f"handmocap.training.datasets.{module}", fromlist=[name]), name)
    except (ImportError, AttributeError):
        raise HandmocapError(f"this handmocap has no {kind} reader ({module}.{name})") from None
    return reader(root, split, size)


def _preview(args: argparse.Namespace) -> int:
    from handmocap.core.errors import HandmocapError
    from handmocap.core.render import save_png

    if args.count < 1 or args.cell < 32:
        raise HandmocapError("--count must be positive and --cell at least 32 px")
    dataset = open_for_preview(args.kind, args.dataset, args.split, args.size)
    if len(dataset) == 0:
        raise HandmocapError(f"{args.dataset} holds no samples")
    picks = np.linspace(0, len(dataset) - 1, min(args.count, len(dataset))).round().astype(int)
    grid, centre_maps = preview_grid([dataset[int(i)] for i in picks], args.cell)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(args.out, grid)
    note = "" if centre_maps else " (no centre maps: training.targets is missing)"
    print(f"wrote {args.out}: {len(picks)} samples, {grid.shape[1]}x{grid.shape[0]} px{note}")
    return 0


def grid_shape(count: int, cell: int) -> tuple[int, int]:
    """(height, width) of the preview of ``count`` samples: two samples per row."""
    columns = min(count, 2)
    rows = -(-count // 2)
    return rows * cell, columns * len(PANELS) * cell


def preview_grid(samples: list[dict], cell: int = 160) -> tuple[np.ndarray, bool]:
    """Samples -> (RGB uint8 grid, whether centre maps were drawn); two samples a row, each
    as the panels of ``PANELS``."""
    height, width = grid_shape(len(samples), cell)
    grid = np.full((height, width, 3), 255, np.uint8)
    drew_centres = True
    for n, sample in enumerate(samples):
        panels, centres = sample_panels(sample, cell)
        drew_centres &= centres
        row, col = n // 2, (n % 2) * len(PANELS)
        grid[row * cell : (row + 1) * cell, col * cell : (col + len(PANELS)) * cell] = panels
    return grid, drew_centres


def sample_panels(sample: dict, cell: int) -> tuple[np.ndarray, bool]:
    """One sample -> (cell, 5 cell, 3) RGB: its panels (``PANELS``), each framed and titled."""
    import cv2

    from handmocap.core.render import draw_skeleton, label
    from handmocap.training.sample import SIDES, hand_masks

    size = sample["image"].shape[0]
    scale = cell / size
    image = cv2.resize(sample["image"], (cell, cell), interpolation=cv2.INTER_AREA)
    joints = image.copy()
    for i, side in enumerate(SIDES):
        if sample["hand_valid"][i]:
            draw_skeleton(joints, sample["joints2d"][i, :, :2] * scale - 0.5,
                          SKELETON_COLORS[side], radius=2, thickness=1)  # fmt: skip
    if float(sample.get("interacting", 0)):
        label(joints, "interacting", org=(4, cell - 6), scale=0.35)
    seg = cv2.resize(sample["part_seg"], (cell, cell), interpolation=cv2.INTER_NEAREST)
    parts = _blend(image, _class_colors()[seg], seg > 0)
    masks = hand_masks(seg)
    mask_colors = np.array([(0, 0, 0), SKELETON_COLORS["left"], SKELETON_COLORS["right"]])
    mask = mask_colors[masks].astype(np.uint8)
    dense = cv2.resize(sample["dense"], (cell, cell), interpolation=cv2.INTER_NEAREST)
    centres, have_centres = _centre_panel(sample, image)
    panels = [joints, parts, mask, dense, centres]
    for panel, title in zip(panels, PANELS, strict=True):
        cv2.rectangle(panel, (0, 0), (cell - 1, cell - 1), (255, 255, 255), 1)
        label(panel, title, org=(4, 12), scale=0.35)
    return np.concatenate(panels, axis=1), have_centres


def _class_colors() -> np.ndarray:
    """(33, 3) uint8: black background, then the 16 part colours per side (left darker)."""
    from handmocap.core.render import part_colors

    parts = (part_colors() * 255).astype(np.uint8)
    return np.concatenate([np.zeros((1, 3), np.uint8), parts, (parts * 0.6).astype(np.uint8)])


def _blend(image: np.ndarray, colors: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = (image * 0.35).astype(np.uint8)
    out[where] = (0.25 * image[where] + 0.75 * colors[where]).astype(np.uint8)
    return out


def _centre_panel(sample: dict, image: np.ndarray) -> tuple[np.ndarray, bool]:
    """ACR's left (blue) and right (red) centre maps over the dimmed picture."""
    import cv2

    try:
        from handmocap.training.targets import center_heatmaps
    except ImportError:
        return (image * 0.35).astype(np.uint8), False
    size, cell = sample["image"].shape[0], image.shape[0]
    maps = center_heatmaps(sample["joints2d"], sample["hand_valid"], size, 64)
    heat = np.stack([cv2.resize(m, (cell, cell), interpolation=cv2.INTER_NEAREST) for m in maps])
    out = image * 0.35
    out[..., 2] += 230 * heat[0]
    out[..., 0] += 230 * heat[1]
    out[..., 1] += 60 * heat.sum(0)
    return np.clip(out, 0, 255).astype(np.uint8), True
