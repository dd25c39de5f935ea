"""What the Blender add-on uses runs without torch or scipy (Blender's Python has numpy only).

Each test runs a fresh interpreter in which torch, scipy, smplx, cv2, mediapipe and av cannot be
imported (``tests/blocked_imports.py``), and checks there the numbers that the parent process,
which has them all, gives.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from blocked_imports import BLENDER_ABSENT, blocker_source

from handmocap.core import rotations as rot
from handmocap.core.handmodel import load_hand_models
from handmocap.core.mano_io import load_mano_pickle
from handmocap.core.models_dir import open_model_path
from handmocap.core.rig import build_rig, pose_to_bones
from handmocap.core.smoothing import smooth_hand

CORE_MODULES = (
    "errors",
    "joints",
    "models_dir",
    "rotations",
    "mano_io",
    "handdata",
    "skeleton",
    "take",
    "smoothing",
    "rig",
    "retarget",
)
ADDON_MODULES = ("anim", "build", "scene", "retarget", "export", "headless")

# The end of every script: nothing blocked got in (an import inside a try would not show).
_CHECK_ABSENT = """
leaked = sorted(m for m in sys.modules for n in BLOCKED_IMPORTS if m == n or m.startswith(n + "."))
assert not leaked, f"imported although blocked: {leaked}"
try:
    import torch  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the import blocker let torch in")
print("TORCH-FREE OK")
"""


def run_blocked(script: str, tmp_path: Path, *args: object) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter with Blender's absent packages blocked."""
    code = blocker_source(BLENDER_ABSENT) + "\n" + textwrap.dedent(script) + _CHECK_ABSENT
    env = {
        **os.environ,
        "HANDMOCAP_MODELS": "",
        "BLENDER_USER_RESOURCES": str(tmp_path / "blender"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "TORCH-FREE OK" in done.stdout
    return done


def test_blocker_blocks(tmp_path: Path) -> None:
    """The blocker itself: blocked packages and their submodules fail, others import."""
    run_blocked(
        """
        import importlib, json, sys
        for name in ("torch", "torch.nn", "scipy.sparse", "smplx", "cv2", "av", "mediapipe"):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                # a submodule fails at its package, as when the package is not installed
                assert exc.name == name.split(".")[0] and "blocked" in str(exc), exc
            else:
                raise AssertionError(f"{name} was imported")
        import numpy  # noqa: F401
        """,
        tmp_path,
    )


def _mano_like_files(folder: Path) -> dict[str, np.ndarray]:
    """MANO_RIGHT/LEFT.pkl as a user's MANO files hold them (protocol 2, a scipy csc
    J_regressor), made from the open hand model's arrays; returns the dense regressors."""
    (folder / "mano").mkdir(parents=True)
    dense = {}
    for side in ("right", "left"):
        arrays = load_mano_pickle(open_model_path(side))
        rng = np.random.default_rng(len(side))
        regressor = arrays["J_regressor"] * (rng.random(arrays["J_regressor"].shape) < 0.5)
        regressor[:, 0] += 1e-3  # no empty row
        arrays["J_regressor"] = sp.csc_matrix(regressor)
        dense[side] = arrays["J_regressor"].toarray()
        path = folder / "mano" / f"MANO_{side.upper()}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=2))
    return dense


def _pose_sequence(frames: int = 24) -> dict[str, np.ndarray]:
    """One hand's parameters over ``frames`` frames, with a gap to bridge and jitter to smooth."""
    rng = np.random.default_rng(5)
    t = np.linspace(0.0, 1.0, frames)[:, None]
    present = np.ones(frames, dtype=bool)
    present[9:11] = False
    return {
        "present": present,
        "global_orient": (np.array([0.3, -1.2, 0.4]) * (1 + t) + rng.normal(0, 0.02, (frames, 3))),
        "hand_pose": rng.normal(0, 0.2, (1, 15, 3)) * (1 + t[..., None])
        + rng.normal(0, 0.02, (frames, 15, 3)),
        "betas": rng.normal(0, 0.5, (frames, 10)),
        "transl": np.array([0.05, -0.02, 0.6]) + 0.1 * t + rng.normal(0, 0.003, (frames, 3)),
        "score": rng.uniform(0.5, 1.0, frames),
    }


def test_core_runs_without_torch_or_scipy(tmp_path: Path) -> None:
    """The modules the add-on uses import, load the hand models (the open one and a MANO file
    with a sparse regressor), build rigs, smooth and convert rotations, with torch and scipy
    blocked, and give the numbers the full environment gives."""
    dense = _mano_like_files(tmp_path / "models")
    hand = _pose_sequence()
    np.savez(tmp_path / "hand.npz", **hand)
    aa = np.random.default_rng(2).normal(0, 1.2, (6, 16, 3))
    np.save(tmp_path / "aa.npy", aa)
    out = tmp_path / "out.npz"
    run_blocked(
        f"""
        import importlib
        import sys
        from pathlib import Path

        import numpy as np

        for name in {CORE_MODULES!r}:
            importlib.import_module("handmocap.core." + name)
        from handmocap.core import rotations as rot
        from handmocap.core.handdata import load_hand_models
        from handmocap.core.rig import bones_to_pose, build_rig, pose_to_bones
        from handmocap.core.smoothing import smooth_hand

        folder = Path(sys.argv[1])
        results = {{}}
        models = load_hand_models(kind="openhand")
        mano = load_hand_models(folder / "models", kind="mano")
        for side in ("right", "left"):
            assert models[side].kind == "openhand" and mano[side].kind == "mano"
            results[f"mano_regressor_{{side}}"] = mano[side].arrays["J_regressor"]
            rig = build_rig(models[side])
            results[f"rig_matrices_{{side}}"] = rig.matrices
            build_rig(mano[side])

        with np.load(folder / "hand.npz") as data:
            hand = dict(data)
        for method in ("offline", "one-euro"):
            smoothed = smooth_hand(hand, 30.0, method)
            for key, value in smoothed.items():
                results[f"smooth_{{method}}_{{key}}"] = value

        aa = np.load(folder / "aa.npy")
        matrix = rot.axis_angle_to_matrix(aa)
        quat = rot.matrix_to_quat(matrix)
        assert rot.axis_angle_to_quat(aa.astype(np.float32)).dtype == np.float32
        results["matrix"] = matrix
        results["quat"] = quat
        results["back"] = rot.quat_to_axis_angle(rot.quat_make_continuous(quat))
        results["rot6d"] = rot.rot6d_interleaved_to_matrix(rot.matrix_to_rot6d_interleaved(matrix))
        quats, location = pose_to_bones(rig, aa[:, 0], aa[:, 1:], np.ones((6, 3)))
        orient, pose, transl = bones_to_pose(rig, quats, location)
        results["bones"] = quats
        np.testing.assert_allclose(rot.axis_angle_to_matrix(orient), matrix[:, 0], atol=1e-12)
        np.testing.assert_allclose(transl, 1.0, atol=1e-12)
        np.savez(folder / "out.npz", **results)
        """,
        tmp_path,
        tmp_path,
    )

    with np.load(out) as data:
        got = dict(data)
    models = load_hand_models(kind="openhand")
    for side in ("right", "left"):
        # the same dense regressor as scipy's toarray(), exactly
        np.testing.assert_array_equal(got[f"mano_regressor_{side}"], dense[side])
        np.testing.assert_array_equal(got[f"rig_matrices_{side}"], build_rig(models[side]).matrices)
    for method in ("offline", "one-euro"):
        for key, value in smooth_hand(hand, 30.0, method).items():
            np.testing.assert_array_equal(got[f"smooth_{method}_{key}"], value)
    # numpy (there) against torch (here): one formula, rounding apart
    matrix = rot.axis_angle_to_matrix(torch.from_numpy(aa))
    np.testing.assert_allclose(got["matrix"], matrix.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["quat"], rot.matrix_to_quat(matrix).numpy(), rtol=0, atol=1e-12)
    back = rot.quat_to_axis_angle(rot.quat_make_continuous(rot.matrix_to_quat(matrix)))
    np.testing.assert_allclose(got["back"], back.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["rot6d"], matrix.numpy(), rtol=0, atol=1e-12)
    quats, _ = pose_to_bones(build_rig(models["left"]), aa[:, 0], aa[:, 1:], np.ones((6, 3)))
    np.testing.assert_allclose(got["bones"], quats, rtol=0, atol=1e-12)


def test_blender_addon_imports_without_torch_or_scipy(tmp_path: Path) -> None:
    """The add-on's modules import in a Python without torch and scipy (bpy stands in for
    Blender)."""
    if importlib.util.find_spec("bpy") is None:  # not imported here: it runs in the subprocess
        pytest.skip("the bpy module runs Blender headless (make test installs it)")
    run_blocked(
        f"""
        import importlib
        import sys

        for name in {ADDON_MODULES!r}:
            importlib.import_module("handmocap.blender_addon." + name)
        from handmocap.blender_addon import headless, scene  # noqa: F401
        """,
        tmp_path,
    )
