"""The hand models' data as plain numpy arrays: real MANO or the open hand model, one side each.

Real MANO files are the user's (``MODELS/mano/MANO_RIGHT.pkl``, ``MANO_LEFT.pkl``); the open
hand model ships with handmocap (``core/assets/openhand``) and is used whenever no MANO files
are configured. Both are stored in MANO's pickle key layout.

numpy only: neither torch nor scipy is imported, so the Blender add-on (whose Python has
neither) can load the models. ``handmodel.HandLayer`` poses them with torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handmocap.core.errors import ModelFileError
from handmocap.core.models_dir import (
    OPEN_MODEL_DIR,
    SIDES,
    default_models_dir,
    mano_model_path,
    open_model_path,
)

# MANO's fingertip vertex ids (thumb, index, middle, ring, pinky): facts of the MANO topology.
MANO_FINGERTIPS = {"right": (745, 317, 444, 556, 673), "left": (745, 317, 445, 556, 673)}


@dataclass(frozen=True)
class HandModelData:
    """One side of a hand model, as plain arrays (metres)."""

    side: str
    kind: str  # "openhand" or "mano"
    model_id: str  # kind plus a hash of the file, recorded in takes and checkpoints
    path: Path
    arrays: dict  # MANO pickle keys -> numpy arrays (J_regressor dense)
    fingertip_ids: np.ndarray  # (5,) vertex ids, thumb..pinky
    part_labels: np.ndarray  # (V,) 0..15, the joint that moves each vertex most
    coarse_faces: np.ndarray | None = None  # a lighter surface over the same vertices

    @property
    def num_vertices(self) -> int:
        return len(self.arrays["v_template"])

    @property
    def faces(self) -> np.ndarray:
        return np.asarray(self.arrays["f"], dtype=np.int64)

    @property
    def drawing_faces(self) -> np.ndarray:
        """The faces to draw in previews: the coarse surface where the model has one."""
        if self.coarse_faces is None:
            return self.faces
        return np.asarray(self.coarse_faces, dtype=np.int64)


def _file_id(kind: str, path: Path) -> str:
    return f"{kind}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def _model_data(side: str, kind: str, path: Path, arrays: dict, tips) -> HandModelData:
    arrays = dict(arrays)
    regressor = arrays["J_regressor"]
    if hasattr(regressor, "toarray"):
        arrays["J_regressor"] = regressor.toarray()
    labels = arrays.get("part_labels")
    if labels is None:  # MANO has no labels: a vertex belongs to the joint that moves it most
        labels = np.argmax(np.asarray(arrays["weights"]), axis=1)
    return HandModelData(
        side=side,
        kind=kind,
        model_id=_file_id(kind, path),
        path=path,
        arrays=arrays,
        fingertip_ids=np.asarray(tips, dtype=np.int64),
        part_labels=np.asarray(labels, dtype=np.int64),
    )


def load_open_hand(side: str) -> HandModelData:
    """The open hand model shipped with handmocap (no licence restrictions)."""
    from handmocap.core.mano_io import load_mano_pickle

    path = open_model_path(side)
    arrays = load_mano_pickle(path)
    data = _model_data(side, "openhand", path, arrays, arrays["fingertip_ids"])
    coarse = OPEN_MODEL_DIR / "OPENHAND_PREVIEW.npz"
    if coarse.is_file():
        with np.load(coarse) as faces:
            data = dataclasses.replace(data, coarse_faces=faces[side])
    return data


def load_mano(models_dir: Path, side: str) -> HandModelData:
    """The user's MANO file for one side; the left-hand shapedirs bug is fixed when present."""
    from handmocap.core.mano_io import load_mano_pair

    pair = load_mano_pair(Path(models_dir) / "mano")
    path = mano_model_path(models_dir, side)
    return _model_data(side, "mano", path, pair[side], MANO_FINGERTIPS[side])


def load_hand_models(
    models_dir: Path | None = None, kind: str = "auto"
) -> dict[str, HandModelData]:
    """Both sides of the configured hand model.

    ``kind``: "mano" needs ``models_dir/mano/MANO_{RIGHT,LEFT}.pkl``; "openhand" is always there;
    "auto" takes MANO when both files are present, else the open model.
    """
    if kind not in ("auto", "mano", "openhand"):
        raise ValueError(f"hand model kind must be auto, mano or openhand, got {kind!r}")
    models_dir = models_dir if models_dir is not None else default_models_dir()
    have_mano = models_dir is not None and all(
        mano_model_path(models_dir, s).is_file() for s in SIDES
    )
    if kind == "mano" and not have_mano:
        where = mano_model_path(models_dir, "right").parent if models_dir else "MODELS/mano"
        raise ModelFileError(
            f"MANO files not found in {where}: put MANO_RIGHT.pkl and MANO_LEFT.pkl there "
            "(licensed by MPI; download them yourself from the MANO website)"
        )
    if kind == "mano" or (kind == "auto" and have_mano):
        return {s: load_mano(models_dir, s) for s in SIDES}
    return {s: load_open_hand(s) for s in SIDES}
