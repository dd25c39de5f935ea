"""Run the official DIR network (read from a checkout of its repository) for parity checks.

Not part of the test run and not shipped: the official code is never copied into handmocap.
``make_dir_reference.py`` uses :func:`load_official` to import ``models.dir`` from an exported
checkout of PengfeiRen96/DIR, with stand-ins for what it imports only for I/O, training or
downloads (timm, einops, imgaug, yacs, torchvision), so that the network runs on CPU in
handmocap's environment.

The official MANO layer (manopth) reads MPI's licensed MANO pickles through chumpy. Here its
``ready_arguments`` is replaced by one that serves handmocap's open hand model, with the
vertices reordered by :func:`mano_ordered_open_model` so that manopth's hard-coded MANO
fingertip vertex ids pick the open model's fingertips. That function needs no official code:
the port's parity test feeds the same reordered model to the port.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import torch

from handmocap.core.handdata import MANO_FINGERTIPS, HandModelData, load_open_hand

# Top-level names of the official tree (and of manopth inside it): purged between two loads, so
# that two checkouts can be imported one after the other in one process.
OFFICIAL_PACKAGES = ("models", "utils", "SemGCN", "transformer", "manopth", "mano")
# What DIR passes as ``mano_path``: only the file names inside it matter to the stand-in.
MANO_ROOT = "openhand"
_loaded_paths: list[str] = []  # sys.path entries added by load_official


def mano_ordered_open_model(side: str) -> HandModelData:
    """The open hand model of ``side`` with its fingertips moved to MANO's vertex ids.

    manopth (and so DIR) takes the fingertip joints from hard-coded MANO vertex ids (right
    745, 317, 444, 556, 673; left 445 for the middle finger). Each open-model fingertip vertex
    is swapped with the vertex at MANO's id: the same hand, vertex order changed. Every
    per-vertex array follows the new order, ``J_regressor`` columns included, and the faces are
    renumbered; ``fingertip_ids`` becomes MANO's.
    """
    data = load_open_hand(side)
    count = data.num_vertices
    order = np.arange(count)  # order[new index] = old index
    for tip, target in zip(data.fingertip_ids, MANO_FINGERTIPS[side], strict=True):
        here = int(np.flatnonzero(order == tip)[0])
        order[[here, target]] = order[[target, here]]
    renumber = np.empty(count, dtype=np.int64)  # renumber[old index] = new index
    renumber[order] = np.arange(count)
    arrays = dict(data.arrays)
    for key in ("v_template", "shapedirs", "posedirs", "weights"):
        arrays[key] = np.asarray(arrays[key])[order]
    arrays["J_regressor"] = np.asarray(arrays["J_regressor"])[:, order]
    faces = np.asarray(arrays["f"])
    arrays["f"] = renumber[faces].astype(faces.dtype)
    tips = np.asarray(MANO_FINGERTIPS[side], dtype=np.int64)
    arrays["fingertip_ids"] = tips
    if "part_labels" in arrays:
        arrays["part_labels"] = np.asarray(arrays["part_labels"])[order]
    coarse = data.coarse_faces
    if coarse is not None:
        coarse = renumber[np.asarray(coarse)].astype(np.asarray(coarse).dtype)
    return dataclasses.replace(
        data,
        model_id=data.model_id + "-manoorder",
        arrays=arrays,
        fingertip_ids=tips,
        part_labels=data.part_labels[order],
        coarse_faces=coarse,
    )


class _Chumpy:
    """What manopth reads of a chumpy array: the numpy array behind ``.r``."""

    def __init__(self, array: np.ndarray) -> None:
        self.r = array


class _Sparse:
    """What manopth reads of MANO's sparse ``J_regressor``: ``.toarray()``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def toarray(self) -> np.ndarray:
        return self._array


def ready_arguments(fname_or_dict, posekey4vposed="pose") -> dict:
    """Stand-in for ``mano.webuser.smpl_handpca_wrapper_HAND_only.ready_arguments``.

    The side comes from the file name manopth builds (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``);
    the arrays are those of :func:`mano_ordered_open_model`, wrapped as manopth reads them.
    """
    side = "left" if Path(fname_or_dict).name == "MANO_LEFT.pkl" else "right"
    a = mano_ordered_open_model(side).arrays
    return {
        "betas": _Chumpy(np.zeros(10)),
        "shapedirs": _Chumpy(np.asarray(a["shapedirs"])),
        "posedirs": _Chumpy(np.asarray(a["posedirs"])),
        "v_template": _Chumpy(np.asarray(a["v_template"])),
        "weights": _Chumpy(np.asarray(a["weights"])),
        "J_regressor": _Sparse(np.asarray(a["J_regressor"])),
        "f": np.asarray(a["f"]),
        "hands_components": np.asarray(a["hands_components"]),
        "hands_mean": np.asarray(a["hands_mean"]),
        "kintree_table": np.asarray(a["kintree_table"]),
        "bs_type": str(a["bs_type"]),
        "bs_style": str(a["bs_style"]),
    }


def _stub(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def _unused(*args, **kwargs):
    raise NotImplementedError("a training-only helper of the official code was called")


class _CfgNode(dict):
    """yacs' ``CfgNode``, built at import time by the official ``utils/config.py``; unused."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()


def _torchvision_resnet50(weights=None):
    """torchvision's ``resnet50`` without the download: same state-dict names, fresh weights.

    The official constructor only copies this network's state into its own backbone, and
    ``make_dir_reference.py`` overwrites every weight afterwards.
    """
    from handmocap.core.backbones.resnet import resnet50

    return resnet50()


def _install_stubs() -> None:
    """Stand-ins for the modules DIR imports but never runs in eval mode on CPU."""
    _stub("timm")
    _stub("timm.models")
    _stub("timm.models.layers", DropPath=_unused, to_2tuple=_unused, trunc_normal_=_unused)
    _stub("einops", rearrange=_unused, repeat=_unused)
    _stub("imgaug")
    _stub("imgaug.augmenters")
    _stub("yacs")
    _stub("yacs.config", CfgNode=_CfgNode)
    weights = types.SimpleNamespace(IMAGENET1K_V2="IMAGENET1K_V2")
    _stub("torchvision")
    _stub("torchvision.models", resnet50=_torchvision_resnet50, ResNet50_Weights=weights)
    _stub("torchvision.transforms")
    _stub("mano")
    _stub("mano.webuser")
    _stub("mano.webuser.smpl_handpca_wrapper_HAND_only", ready_arguments=ready_arguments)


def _purge() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in OFFICIAL_PACKAGES:
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in _loaded_paths]
    _loaded_paths.clear()


def load_official(repo: Path):
    """Import the official ``models.dir`` from the checkout ``repo``; return the module.

    Modules of a checkout loaded before are dropped first, so release and latest can be
    compared in one process.
    """
    _purge()
    _install_stubs()
    _loaded_paths.extend([str(repo), str(repo / "manopth")])
    sys.path[:0] = _loaded_paths
    import models.dir as official_dir  # the official package, found through sys.path

    return official_dir


def cpu_only() -> None:
    """The official code calls ``.cuda()`` in its forward and in its loss constructors."""
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
