"""Tests of handmocap.core.mano_io: safe MANO pickle loading, chumpy, the left-hand fix, errors.

No MANO file is used (they are licensed): every pickle is built here, small (50 vertices).
"""

from __future__ import annotations

import builtins
import os
import pickle
import pickletools
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handmocap.core import mano_io
from handmocap.core.errors import ModelFileError
from handmocap.core.mano_io import (
    fix_left_shapedirs,
    load_mano_pair,
    load_mano_pickle,
    to_smplx_struct,
)

N_VERTS, N_JOINTS, N_SHAPE, N_FACES = 50, 16, 10, 96
PARENTS = [0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # MANO's, joints 1..15


def mano_like(seed: int = 0) -> dict[str, object]:
    """A small random model in MANO's key layout (MANO's dtypes, sparse J_regressor)."""
    rng = np.random.default_rng(seed)
    regressor = rng.random((N_JOINTS, N_VERTS)) * (rng.random((N_JOINTS, N_VERTS)) < 0.2)
    regressor[:, 0] += 1e-3  # no empty row
    weights = rng.random((N_VERTS, N_JOINTS))
    return {
        "f": rng.integers(0, N_VERTS, (N_FACES, 3)).astype(np.uint32),
        "v_template": rng.normal(0, 0.05, (N_VERTS, 3)),
        "shapedirs": rng.normal(0, 0.01, (N_VERTS, 3, N_SHAPE)),
        "posedirs": rng.normal(0, 0.001, (N_VERTS, 3, 9 * (N_JOINTS - 1))),
        "J_regressor": sp.csc_matrix(regressor / regressor.sum(1, keepdims=True)),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[2**32 - 1, *PARENTS], list(range(N_JOINTS))], np.int64),
        "hands_components": rng.normal(0, 1, (45, 45)),
        "hands_mean": rng.normal(0, 0.1, 45),
        "J": rng.normal(0, 0.05, (N_JOINTS, 3)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write(path: Path, obj: object, protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def globals_named(data: bytes) -> set[str]:
    """The 'module name' strings of the GLOBAL opcodes of a protocol-2 pickle."""
    return {str(arg) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


# --- code-running pickles ---------------------------------------------------------------------


class _Payload:
    """Pickles as a call of ``func(*args)``: what a malicious model file would do."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    from numpy.testing._private.utils import runstring

    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, f"touch '{marker}'"),
        "builtins.eval": _Payload(builtins.eval, touch),
        "builtins.exec": _Payload(builtins.exec, touch),
        "subprocess.check_call": _Payload(subprocess.check_call, ["touch", str(marker)]),
        "numpy runstring": _Payload(runstring, touch, {}),
    }


@pytest.mark.parametrize(
    "which",
    ["os.system", "builtins.eval", "builtins.exec", "subprocess.check_call", "numpy runstring"],
)
def test_code_running_pickle_is_refused(tmp_path: Path, which: str) -> None:
    marker = tmp_path / "MARKER"
    payload = _payloads(marker)[which]
    model = mano_like()
    model["shapedirs"] = payload  # hidden inside an otherwise valid model
    path = write(tmp_path / "MANO_RIGHT.pkl", model)
    # The payload's global as the pickle names it (protocol 2 spells builtins "__builtin__").
    (named,) = [
        g for g in globals_named(path.read_bytes()) if g.split()[1] == payload.func.__name__
    ]
    refused = named.replace(" ", ".")

    # Plain pickle would run it: proven in a child process.
    plain = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    subprocess.run([sys.executable, "-c", plain, str(path)], check=False, capture_output=True)
    assert marker.exists(), "the payload should run under plain pickle"
    marker.unlink()

    with pytest.raises(ModelFileError) as info:
        load_mano_pickle(path)
    assert refused in str(info.value)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("numpy", "load"),
        ("numpy.core.multiarray", "frombuffer"),
        ("builtins", "getattr"),
        ("__builtin__", "eval"),
        ("posix", "system"),
    ],
)
def test_other_globals_are_refused(tmp_path: Path, module: str, name: str) -> None:
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=rf"{module}\.{name}"):
        load_mano_pickle(path)


def test_array_reconstruction_rejects_subclasses(tmp_path: Path) -> None:
    data = pickle.dumps(np.zeros(3), protocol=2).replace(b"cnumpy\nndarray\n", b"cnumpy\ndtype\n")
    path = tmp_path / "sub.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=r"only numpy\.ndarray"):
        load_mano_pickle(path)


# --- chumpy-style pickle ----------------------------------------------------------------------


def _fake_chumpy(monkeypatch: pytest.MonkeyPatch) -> tuple[type, type]:
    """Register modules ``chumpy`` / ``chumpy.ch`` with a ``Ch`` (array in 'x') and a derived op."""
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    def getstate(self: object) -> dict[str, object]:
        # What chumpy's Ch.__getstate__ keeps: its __dict__ less two weak-key dicts.
        return {
            "x": self.x,
            "_dirty_vars": {"x"},
            "_itr": None,
            "_make_dense": False,
            "_make_sparse": False,
            "_depends_on_deps": {},
        }

    ch = type("Ch", (), {"__module__": "chumpy.ch", "__getstate__": getstate})
    add = type("add", (), {"__module__": "chumpy.ch", "__getstate__": lambda s: {"a": 1}})
    module.Ch, module.add, package.ch = ch, add, module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return ch, add


def _write_chumpy_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    ch, _ = _fake_chumpy(monkeypatch)
    model = mano_like()
    wrapped = dict(model)
    for key in ("v_template", "shapedirs", "hands_components", "hands_mean"):
        wrapped[key] = ch()
        wrapped[key].x = model[key]
    path = write(tmp_path / "MANO_RIGHT.pkl", wrapped)
    monkeypatch.undo()
    assert "chumpy" not in sys.modules
    assert "chumpy.ch Ch" in globals_named(path.read_bytes())
    return path, model


def test_chumpy_pickle_loads_as_numpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model = _write_chumpy_model(tmp_path, monkeypatch)
    with pytest.raises(ModuleNotFoundError):  # what plain pickle does without chumpy
        pickle.loads(path.read_bytes(), encoding="latin1")
    loaded = load_mano_pickle(path)
    assert loaded.keys() == model.keys()
    for key, value in model.items():
        if key == "J_regressor":  # read without scipy, as the dense array scipy would give
            assert type(loaded[key]) is np.ndarray
            assert loaded[key].dtype == value.dtype
            np.testing.assert_array_equal(loaded[key], value.toarray())
        elif isinstance(value, np.ndarray):
            assert type(loaded[key]) is np.ndarray
            assert loaded[key].dtype == value.dtype
            np.testing.assert_array_equal(loaded[key], value)
        else:
            assert loaded[key] == value


def test_smplx_runs_on_loaded_chumpy_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import smplx
    import torch

    path, _ = _write_chumpy_model(tmp_path, monkeypatch)
    struct = to_smplx_struct(load_mano_pickle(path))
    hand = smplx.MANO(
        model_path=str(tmp_path), data_struct=struct, use_pca=False, flat_hand_mean=True
    )
    torch.manual_seed(0)
    out = hand(
        betas=torch.randn(2, N_SHAPE),
        global_orient=torch.randn(2, 3) * 0.3,
        hand_pose=torch.randn(2, 45) * 0.3,
    )
    assert out.vertices.shape == (2, N_VERTS, 3)
    assert out.joints.shape == (2, N_JOINTS, 3)
    assert torch.isfinite(out.vertices).all()


def test_derived_chumpy_object_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, add = _fake_chumpy(monkeypatch)
    model = mano_like()
    model["shapedirs"] = add()
    path = write(tmp_path / "m.pkl", model)
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match=r"'shapedirs'.*chumpy\.ch\.add.*'x'"):
        load_mano_pickle(path)


# --- numpy 2 / scipy module paths -------------------------------------------------------------


def test_numpy2_module_paths_load(tmp_path: Path) -> None:
    model = mano_like()
    data = pickle.dumps(model, protocol=2)
    assert "numpy.core.multiarray _reconstruct" in globals_named(data)
    # GLOBAL names are newline-terminated text in protocol 2: replacing them keeps the stream valid.
    data = data.replace(b"numpy.core.multiarray\n", b"numpy._core.multiarray\n")
    assert "numpy._core.multiarray _reconstruct" in globals_named(data)
    assert not any(name.startswith("numpy.core") for name in globals_named(data))
    path = tmp_path / "numpy2.pkl"
    path.write_bytes(data)
    loaded = load_mano_pickle(path)
    np.testing.assert_array_equal(loaded["posedirs"], model["posedirs"])


@pytest.mark.parametrize("old", [b"scipy.sparse.csc\n", b"scipy.sparse\n"])
def test_older_scipy_module_paths_load(tmp_path: Path, old: bytes) -> None:
    model = mano_like()
    data = pickle.dumps(model, protocol=2).replace(b"scipy.sparse._csc\n", old)
    path = tmp_path / "oldscipy.pkl"
    path.write_bytes(data)
    loaded = load_mano_pickle(path)
    np.testing.assert_array_equal(loaded["J_regressor"], model["J_regressor"].toarray())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_numpy_pickles_load_at_any_protocol(tmp_path: Path, protocol: int) -> None:
    model = mano_like()
    model["J_regressor"] = model["J_regressor"].toarray()  # dense is fine too
    model["empty"] = b""
    loaded = load_mano_pickle(write(tmp_path / "m.pkl", model, protocol))
    np.testing.assert_array_equal(loaded["J_regressor"], model["J_regressor"])
    assert loaded["empty"] == b""


@pytest.mark.parametrize("kind", ["csc_matrix", "csr_matrix", "csc_array", "csr_array"])
def test_sparse_matrices_load_as_scipy_densifies_them(tmp_path: Path, kind: str) -> None:
    """scipy sparse matrices are rebuilt from their pickled parts without scipy, into exactly
    the array scipy's ``toarray()`` gives, in its dtype (unsorted indices, duplicate entries,
    which are summed, and empty lines included)."""
    make = getattr(sp, kind)
    regressor = make(mano_like()["J_regressor"])
    parts = (
        np.array([1.0, 2.0, 0.5, 3.0, 4.0, 5.0], np.float32),  # data
        np.array([2, 0, 2, 1, 0, 2], np.int64),  # indices: line 0 holds 2, 0 and 2 again
        np.array([0, 3, 3, 5, 6], np.int32),  # indptr: line 1 is empty
    )
    awkward = make(parts, shape=(3, 4) if kind.startswith("csc") else (4, 3))
    awkward.check_format(full_check=True)
    model = dict(mano_like(), J_regressor=regressor, awkward=awkward)
    loaded = load_mano_pickle(write(tmp_path / "m.pkl", model))
    for key in ("J_regressor", "awkward"):
        assert type(loaded[key]) is np.ndarray
        assert loaded[key].dtype == model[key].toarray().dtype
        np.testing.assert_array_equal(loaded[key], model[key].toarray())
    assert loaded["awkward"].dtype == np.float32 and loaded["awkward"].sum() == 15.5


@pytest.mark.parametrize(
    "damage, message",
    [
        ("index", "indices outside 0..15"),
        ("indptr_length", "index pointer has 50 entries, expected 51"),
        ("indptr_order", "index pointer does not run"),
        ("data_length", "indices and data do not have the same size"),
        ("shape", "is not a pair"),
        ("indices_dtype", "not an integer array"),
    ],
)
def test_broken_sparse_matrix_is_refused(tmp_path: Path, damage: str, message: str) -> None:
    model = mano_like()
    matrix = model["J_regressor"]
    if damage == "index":
        matrix.indices[0] = N_JOINTS + 5  # row index out of range
    elif damage == "indptr_length":
        matrix.indptr = matrix.indptr[:-1]
    elif damage == "indptr_order":
        matrix.indptr[5] = matrix.indptr[7] + 1
    elif damage == "data_length":
        matrix.data = matrix.data[:-1]
    elif damage == "shape":
        matrix._shape = (N_JOINTS,)
    else:
        matrix.indices = matrix.indices.astype(np.float64)
    with pytest.raises(ModelFileError, match="J_regressor.*sparse") as info:
        load_mano_pickle(write(tmp_path / "m.pkl", model))
    assert message in str(info.value)


# --- left-hand shapedirs fix ------------------------------------------------------------------


def _snapshot(model: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in model.items()}


def _assert_same(model: dict, snapshot: dict) -> None:
    assert model.keys() == snapshot.keys()
    for key, value in snapshot.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(model[key], value)


def test_buggy_left_shapedirs_are_mirrored() -> None:
    right = mano_like(1)
    left = mano_like(2)
    left["shapedirs"] = right["shapedirs"].copy()  # the bug: x not mirrored (y, z equal anyway)
    left_before, right_before = _snapshot(left), _snapshot(right)
    fixed, was_fixed = fix_left_shapedirs(left, right)
    assert was_fixed is True
    np.testing.assert_array_equal(fixed["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_array_equal(fixed["shapedirs"][:, 1:], right["shapedirs"][:, 1:])
    assert fixed is not left and fixed["v_template"] is left["v_template"]
    _assert_same(left, left_before)
    _assert_same(right, right_before)


def test_correct_left_shapedirs_are_kept() -> None:
    right = mano_like(1)
    left = mano_like(2)
    left["shapedirs"] = right["shapedirs"] * np.array([-1.0, 1.0, 1.0])[None, :, None]
    left_before = _snapshot(left)
    kept, was_fixed = fix_left_shapedirs(left, right)
    assert was_fixed is False
    assert kept is not left
    np.testing.assert_array_equal(kept["shapedirs"], left_before["shapedirs"])
    _assert_same(left, left_before)


def test_left_fix_refuses_mismatched_hands() -> None:
    right = mano_like()
    left = dict(right, shapedirs=right["shapedirs"][:, :, :5])
    with pytest.raises(ModelFileError, match="pair"):
        fix_left_shapedirs(left, right)


def test_load_mano_pair_fixes_only_buggy_left(tmp_path: Path) -> None:
    right = mano_like(1)
    write(tmp_path / "MANO_RIGHT.pkl", right)
    write(tmp_path / "MANO_LEFT.pkl", dict(mano_like(2), shapedirs=right["shapedirs"]))
    pair = load_mano_pair(tmp_path)
    assert set(pair) == {"right", "left"}
    np.testing.assert_array_equal(pair["left"]["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_array_equal(pair["right"]["shapedirs"], right["shapedirs"])


@pytest.mark.parametrize("missing", ["MANO_LEFT.pkl", "MANO_RIGHT.pkl"])
def test_load_mano_pair_names_missing_file(tmp_path: Path, missing: str) -> None:
    for name in {"MANO_LEFT.pkl", "MANO_RIGHT.pkl"} - {missing}:
        write(tmp_path / name, mano_like())
    with pytest.raises(ModelFileError, match=rf"{missing} not found.*MPI.*downloaded") as info:
        load_mano_pair(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_load_mano_pair_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="MANO folder not found"):
        load_mano_pair(tmp_path / "nowhere")


# --- unreadable and inconsistent files --------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file\n", b"\x89PNG\r\n\x1a\n\x00\x00", b"\x80\x05\x95\xff"],
)
def test_not_a_pickle(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="MANO_RIGHT.pkl"):
        load_mano_pickle(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        load_mano_pickle(tmp_path / "MANO_RIGHT.pkl")


def test_truncated_pickle(tmp_path: Path) -> None:
    data = pickle.dumps(mano_like(), protocol=2)
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"MANO_RIGHT\.pkl.*not a readable"):
        load_mano_pickle(path)


_VALID = pickle.dumps(mano_like(), protocol=2)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, len(_VALID) - 1),
    flip=st.tuples(st.integers(0, len(_VALID) - 1), st.integers(1, 255)),
)
def test_any_damage_is_a_model_file_error(tmp_path: Path, cut: int, flip: tuple[int, int]) -> None:
    path = tmp_path / "damaged.pkl"
    path.write_bytes(_VALID[:cut])
    with pytest.raises(ModelFileError):
        load_mano_pickle(path)
    data = bytearray(_VALID)
    data[flip[0]] ^= flip[1]
    path.write_bytes(bytes(data))
    try:
        load_mano_pickle(path)  # a harmless flip (inside array data) may still load
    except ModelFileError:
        pass


@pytest.mark.parametrize("top", [[1, 2, 3], np.zeros(3), "text", None])
def test_top_level_not_a_dict(tmp_path: Path, top: object) -> None:
    path = write(tmp_path / "MANO_RIGHT.pkl", top)
    with pytest.raises(ModelFileError, match=r"MANO_RIGHT\.pkl.*not a dict"):
        load_mano_pickle(path)


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    model = mano_like()
    del model["posedirs"], model["hands_mean"]
    with pytest.raises(ModelFileError, match=r"missing MANO keys: posedirs, hands_mean \("):
        load_mano_pickle(write(tmp_path / "m.pkl", model))


def _break(model: dict, key: str) -> None:
    """Make one inconsistency of the kind named by ``key``."""
    if key == "f_range":
        model["f"][3, 1] = N_VERTS
    elif key == "parents":
        model["kintree_table"][0, 4] = 9
    elif key == "dtype":
        model["weights"] = model["weights"].astype(str)
    elif key == "nan":
        model["v_template"][0, 0] = np.nan
    elif key == "J_regressor":
        model[key] = model[key][:, :-1]
    elif key == "v_template":
        model[key] = model[key][:, :2]
    elif key == "shapedirs":
        model[key] = model[key][1:]
    else:
        model[key] = np.delete(model[key], 0, axis=model[key].ndim - 1)


@pytest.mark.parametrize(
    "key, message",
    [
        ("shapedirs", "shapedirs has shape (49, 3, 10), expected (50, 3, ?)"),
        ("posedirs", "posedirs has shape (50, 3, 134), expected (50, 3, 135)"),
        ("weights", "weights has shape (50, 15), expected (50, 16)"),
        ("J_regressor", "J_regressor has shape (16, 49), expected (16, 50)"),
        ("kintree_table", "weights has shape (50, 16), expected (50, 15)"),
        ("hands_mean", "hands_mean has shape (44,), expected (45,)"),
        ("v_template", "v_template has shape (50, 2), expected (?, 3)"),
        ("f_range", "f has vertex indices outside 0..49"),
        ("parents", "joints [4]"),
        ("dtype", "weights has dtype"),
        ("nan", "v_template has values that are not finite"),
    ],
)
def test_inconsistent_shapes(tmp_path: Path, key: str, message: str) -> None:
    model = mano_like()
    _break(model, key)
    path = write(tmp_path / "m.pkl", model)
    with pytest.raises(ModelFileError) as info:
        load_mano_pickle(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_sizes_come_from_the_file(tmp_path: Path) -> None:
    """Another topology in the same layout (here 7 joints, 31 vertices) loads."""
    rng = np.random.default_rng(3)
    n_verts, n_joints = 31, 7
    model = {
        "f": rng.integers(0, n_verts, (20, 3)),
        "v_template": rng.normal(size=(n_verts, 3)),
        "shapedirs": rng.normal(size=(n_verts, 3, 4)),
        "posedirs": rng.normal(size=(n_verts, 3, 9 * (n_joints - 1))),
        "J_regressor": rng.random((n_joints, n_verts)),
        "weights": rng.random((n_verts, n_joints)),
        "kintree_table": np.array([[-1, 0, 1, 0, 3, 0, 5], range(n_joints)]),
        "hands_components": rng.normal(size=(3, 3 * (n_joints - 1))),
        "hands_mean": np.zeros(3 * (n_joints - 1)),
    }
    loaded = load_mano_pickle(write(tmp_path / "other.pkl", model, protocol=4))
    assert loaded["v_template"].shape == (n_verts, 3)


def test_import_does_no_work() -> None:
    code = (
        "import sys, handmocap.core.mano_io; "
        "print(*(name in sys.modules for name in ('smplx', 'torch', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False", "False"]
    assert mano_io.REQUIRED_KEYS[0] == "f"
