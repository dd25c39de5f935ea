"""Reading network checkpoints without running code, and loading them with one clear error.

A checkpoint is a torch file holding a state dict, possibly wrapped in a dict under ``net``
(DIR's official files, which also hold the optimizer's state), ``state_dict`` or
``model_state_dict``. Files are read with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers: a checkpoint can never execute code.
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

WRAPPERS = ("net", "state_dict", "model_state_dict")


def read_checkpoint_file(path: Path):
    """Whatever a torch checkpoint file holds, read with the restricted unpickler."""
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
    return data


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from one of ``WRAPPERS``."""
    data = read_checkpoint_file(path)
    for wrapper in WRAPPERS:
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelFileError(f"{path}: holds no state dict of tensors")
    return data


def check_and_load(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    network: str,
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
        raise ModelFileError(f"{source}: does not fit this {network} network; " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


# The project's own checkpoints (written by ``handmocap train``): a dict with this format number,
# the network's name and config, the hand model it was trained with, its weights under "model"
# and its training record.
PROJECT_FORMAT = 1
PROJECT_KEYS = ("network", "network_config", "hand_model_id", "hand_model_kind", "model")


def read_project_checkpoint(path: Path) -> dict:
    """A checkpoint written by ``handmocap train`` (or a weights-only export of one)."""
    data = read_checkpoint_file(path)
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise ModelFileError(f"{path}: not a handmocap checkpoint (written by handmocap train)")
    missing = [k for k in PROJECT_KEYS if k not in data]
    if missing:
        raise ModelFileError(f"{path}: handmocap checkpoint without {', '.join(missing)}")
    return data
