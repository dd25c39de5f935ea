"""Loading ACR checkpoints: the official release (``wild.pkl``) and handmocap's own.

The official file is a torch pickle of the network's state dict, saved from ``DataParallel``
(every key starts with ``module.``), sometimes wrapped in ``{"state_dict": ...}`` or
``{"model_state_dict": ...}``. It loads with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers, so a checkpoint can never run code.

The official module names map onto this port's by the prefix table ``OFFICIAL_PREFIXES``; the
official ``segmentation_layers`` are dropped: the official network builds them but its forward
never uses them (part segmentation comes from ``backbone.hand_segm``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from handmocap.core.checkpoints import check_and_load, read_state_dict  # noqa: F401  (re-exported)

# official prefix -> this port's prefix (longest match first)
OFFICIAL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("backbone.hand_segm.segm_head.upsampler.up1.conv.double_conv.", "part_segm.upsample."),
    ("backbone.hand_segm.segm_head.segm_net.double_conv.", "part_segm.classify."),
    ("l_final_layers.1.", "left.params."),
    ("l_final_layers.2.", "left.center."),
    ("l_final_layers.3.", "left.camera."),
    ("l_final_layers.4.", "left.prior."),
    ("r_final_layers.1.", "right.params."),
    ("r_final_layers.2.", "right.center."),
    ("r_final_layers.3.", "right.camera."),
    ("r_final_layers.4.", "right.prior."),
    ("contact_layers.1.", "part_features."),
    ("contact_layers.2.", "left.part_pose."),
    ("contact_layers.3.", "right.part_pose."),
    ("contact_layers.4.", "left.fusion."),
    ("contact_layers.5.", "right.fusion."),
    ("cam_shape_layers.1.0.", "shape_features."),
    ("cam_shape_layers.2.", "left.part_shape."),
    ("cam_shape_layers.3.", "right.part_shape."),
    ("backbone.", "backbone."),
)
# official prefix -> why its keys are dropped
OFFICIAL_DROPPED = {
    "segmentation_layers.": "built by the official network but never used in its forward",
}


def official_to_port(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename official keys to this port's; return (renamed, keys that match no known prefix).

    Keys under ``OFFICIAL_DROPPED`` prefixes are left out.
    """
    renamed, unknown = {}, []
    for key, value in state.items():
        name = key.removeprefix("module.")
        if any(name.startswith(p) for p in OFFICIAL_DROPPED):
            continue
        for old, new in OFFICIAL_PREFIXES:
            if name.startswith(old):
                renamed[new + name[len(old) :]] = value
                break
        else:
            unknown.append(key)
    return renamed, unknown


def official_key(key: str) -> str:
    """This port's key -> its official name (with ``module.``)."""
    for old, new in OFFICIAL_PREFIXES:
        if key.startswith(new):
            return "module." + old + key[len(new) :]
    raise KeyError(f"no official name for {key}")


def port_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This port's keys -> the official names (with ``module.``), e.g. to write test files."""
    return {official_key(key): value for key, value in state.items()}


def load_official_acr(model: nn.Module, path: Path) -> None:
    """Fill ``model`` (an ``ACR`` built with the official config) from the official ``wild.pkl``.

    Every parameter and buffer of the model is filled and every key of the file is used, or
    dropped by name for the reason in ``OFFICIAL_DROPPED``; anything else is one
    ``ModelFileError`` naming the missing, unexpected and wrongly shaped keys.
    """
    state = read_state_dict(path)
    renamed, unknown = official_to_port(state)
    check_and_load(model, renamed, str(path), "ACR", extra=unknown, name=official_key)
