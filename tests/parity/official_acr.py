"""Run the official ACR network (read from a checkout of its repository) for parity checks.

Not part of the test run and not shipped: the official code is never copied into handmocap.
``make_reference.py`` uses this to build the official network with stand-ins for the modules
it imports only for I/O and training (h5py, imgaug, yaml, the argparse config), so that its
model and result parser run on CPU in handmocap's environment.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch

# Settings of the official demo (acr/config.py defaults + configs/demo.yml).
OFFICIAL_ARGS = dict(
    model_precision="fp32",
    centermap_size=64,
    centermap_conf_thresh=0.35,
    kernel_sizes=[5],
    inter_prior=True,
    prior_mode="cross",
    dataset="internet",
    rot_dim=6,
    cam_dim=3,
    Rot_type="6D",
    mano_theta_num=16,
    merge_mano_camera_head=False,
    attention_mode="pred-part",
    offset_mode="concat",
    model_version=1,
    model_path="",
    max_hand=4,
    input_size=512,
    head_block_num=2,
    focal_length=1265,
    cam_id=0,
    align_idx=9,
    mano_mesh_root_align=True,
    perspective_proj=False,
)


def _stub(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def load_official(repo: Path):
    """Import the official ``acr.model`` from ``repo``; return the module."""
    namespace = types.SimpleNamespace(**OFFICIAL_ARGS)
    _stub("acr.config", args=lambda: namespace)
    _stub("h5py")
    _stub("yaml")
    imgaug = _stub("imgaug")
    augmenters = _stub("imgaug.augmenters", compute_paddings_to_reach_aspect_ratio=None)
    imgaug.augmenters = augmenters
    sys.path.insert(0, str(repo))
    import acr  # noqa: F401  (the official package, found through sys.path)
    import acr.model as official_model

    return official_model


def cpu_only() -> None:
    """The official code calls ``.cuda()`` inside its forward: make that a no-op on CPU."""
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
