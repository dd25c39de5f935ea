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

import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from handmocap.core.errors import ModelFileError

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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from ``state_dict`` / ``model_state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the checkpoint ({exc})") from exc
    # A malformed file makes torch.load's restricted unpickler fail in many ways: besides these,
    # KeyError (unknown opcode, e.g. a text file), IndexError (stack underflow), struct.error.
    except (
        pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError,
        KeyError, IndexError, struct.error,
    ) as exc:  # fmt: skip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path}: not a weights-only torch checkpoint (refused to unpickle: {first})"
        ) from exc
    for wrapper in ("state_dict", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelFileError(f"{path}: holds no state dict of tensors")
    return data


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


def check_and_load(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    extra=(),
    name: Callable[[str], str] = str,
):
    """Load ``state`` into ``model`` or raise one error listing every problem.

    ``name`` turns a model key into the name the error reports (the file's own naming).
    """
    expected = model.state_dict()
    missing = sorted(name(k) for k in set(expected) - set(state))
    unexpected = sorted(name(k) for k in set(state) - set(expected)) + list(extra)
    wrong = [
        f"{name(k)} {tuple(state[k].shape)} (model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f" ... ({len(keys)} in all)" if len(keys) > 8 else ""
                )
                parts.append(f"{label}: {shown}")
        raise ModelFileError(f"{source}: does not fit this ACR network; " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_official_acr(model: nn.Module, path: Path) -> None:
    """Fill ``model`` (an ``ACR`` built with the official config) from the official ``wild.pkl``.

    Every parameter and buffer of the model is filled and every key of the file is used, or
    dropped by name for the reason in ``OFFICIAL_DROPPED``; anything else is one
    ``ModelFileError`` naming the missing, unexpected and wrongly shaped keys.
    """
    state = read_state_dict(path)
    renamed, unknown = official_to_port(state)
    check_and_load(model, renamed, str(path), extra=unknown, name=official_key)
