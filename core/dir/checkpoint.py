"""Loading DIR's official checkpoint (``DIR.pth``) into the port.

The official file is ``torch.save({'net': state_dict, 'optimizer': ..., 'schedule': ...,
'last_epoch': ...})`` of the network without ``DataParallel``. It is read with
``torch.load(weights_only=True)`` (``checkpoints.read_state_dict``): loading never executes
code. The port's module names are the official ones, so every parameter maps key for key; the
entries of the file that are not parameters of the port are dropped by name, each for the
reason in ``DROPPED``. Anything else missing, unexpected or wrongly shaped is one
``ModelFileError`` that names it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from handmocap.core.checkpoints import check_and_load, read_state_dict
from handmocap.core.dir.model import DIR, pixel_centres
from handmocap.core.errors import ModelFileError

log = logging.getLogger(__name__)

# Which official entries are not the port's parameters, and why they are dropped.
DROPPED = {
    "mano_layer": "MANO's data (six copies, one per hand and stage): the port poses the hand "
    "model configured in the models folder instead; they are compared with it when it is MANO",
    "backbone.fc.": "the ImageNet classifier of the encoder's initialisation, never used by DIR",
    "seg_loss.weight": "the class weights of the training loss, not part of the network",
    "img_gird": "the pixel-centre grid of a refinement stage, recomputed (and checked equal)",
}


def drop_reason(key: str) -> str | None:
    """Why an official key is not loaded, or None when it is a parameter of the port."""
    for part, reason in DROPPED.items():
        if part in key:
            return reason
    return None


def split_official(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(the port's entries, the dropped ones) of an official state dict."""
    kept, dropped = {}, {}
    for key, value in state.items():
        (dropped if drop_reason(key) else kept)[key] = value
    return kept, dropped


def check_dropped(model: DIR, dropped: dict[str, torch.Tensor], source: str) -> list[str]:
    """Problems with the dropped entries that matter: a pixel grid that differs from the port's
    (a different feature size) is an error; an embedded MANO that differs from the configured
    hand model is a warning (returned, and logged)."""
    warnings = []
    for key, value in dropped.items():
        if key.endswith("img_gird"):
            size = int(round(value.shape[0] ** 0.5))
            if value.shape != (size * size, 2) or not torch.allclose(value, pixel_centres(size)):
                raise ModelFileError(f"{source}: {key} is not a pixel-centre grid")
            stage = model.get_submodule(key.rsplit(".", 1)[0])
            if size != stage.size:
                raise ModelFileError(
                    f"{source}: {key} is for a {size}x{size} map, this network's is {stage.size}"
                )
    for side in ("left", "right"):
        template = dropped.get(f"init_regressor.mano_layer_{side}.th_v_template")
        if template is None:
            continue
        ours = model.hands.buffer(side, "v_template")
        if template.shape[1:] != ours.shape or (template[0] - ours.cpu()).abs().max() > 1e-5:
            warnings.append(
                f"{source} was trained with MANO's {side} hand "
                f"({template.shape[1]} vertices); the configured hand model differs "
                f"({ours.shape[0]} vertices): its hands will be wrong"
            )
    for warning in warnings:
        log.warning(warning)
    return warnings


def load_official_dir(model: DIR, path: Path) -> list[str]:
    """Fill ``model`` from the official ``DIR.pth``; return warnings about the hand model.

    Every parameter and buffer of the model is filled, and every entry of the file is used or
    dropped by name for its reason in ``DROPPED``; anything else is one ``ModelFileError``.
    """
    state = read_state_dict(path)
    kept, dropped = split_official(state)
    check_and_load(model, kept, str(path), "DIR")
    return check_dropped(model, dropped, str(path))
