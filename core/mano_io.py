"""Read MANO model pickles without ever running code from them.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (licensed by MPI, downloaded by the user, never
shipped with handmocap) were written by Python 2 and hold chumpy objects next to numpy arrays and
a scipy sparse matrix. A plain ``pickle.load`` would need chumpy installed (it does not work on
Python 3.11) and, worse, would call whatever function the file names. Here every global the
pickle asks for goes through an allow-list: the numpy functions that rebuild arrays, dtypes and
scalars, ``set`` and the byte-string helpers that protocol 2 pickles use, the scipy csc/csr
sparse classes and chumpy classes. Those last two become stand-ins that only keep their pickled
state: a chumpy array is read as the numpy array it holds, a sparse matrix (MANO's
``J_regressor``) as the dense numpy array its ``toarray()`` would give, checked and built here
from its parts. Anything else is refused with :class:`ModelFileError` before it can run.

Neither scipy nor chumpy (nor smplx, nor torch) is imported: a MANO file loads wherever numpy
does, Blender's Python included.

The loaded dict is checked against MANO's key layout with sizes taken from the file itself (the
open hand model uses the same layout with another topology), and can be handed to
``smplx.MANO(data_struct=...)`` through :func:`to_smplx_struct`.
"""

from __future__ import annotations

import functools
import io
import logging
import operator
import pickle
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handmocap.core.errors import ModelFileError

if TYPE_CHECKING:
    import smplx.utils

log = logging.getLogger(__name__)

RIGHT_FILE = "MANO_RIGHT.pkl"
LEFT_FILE = "MANO_LEFT.pkl"

#: Keys every MANO-layout model must have (``smplx.MANO`` reads all of them).
REQUIRED_KEYS: tuple[str, ...] = (
    "f",
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "hands_components",
    "hands_mean",
)

_LICENSE_NOTE = (
    "MANO files are licensed by MPI and must be downloaded by the user from the MANO website "
    "(https://mano.is.tue.mpg.de); handmocap never ships them"
)

# The official check (DIR / IntagHand): the left x components are the right hand's when their
# absolute differences sum to less than this.
_LEFT_BUG_THRESHOLD = 1.0


# --------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------


class _ChumpyStandIn:
    """What a chumpy object unpickles into: its state is kept as data, nothing else happens.

    Subclasses made by :func:`_chumpy_stand_in` carry the original ``module.name`` of the chumpy
    class so that error messages can name it.
    """

    chumpy_name = "chumpy"
    args: tuple[object, ...] = ()
    state: object = None

    def __init__(self, *args: object, **_kwargs: object) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.state = state


@functools.cache
def _chumpy_stand_in(qualified_name: str) -> type[_ChumpyStandIn]:
    """Return the stand-in class for the chumpy class ``qualified_name`` (one per name)."""
    return type("ChumpyStandIn", (_ChumpyStandIn,), {"chumpy_name": qualified_name})


class _SparseStandIn:
    """What a scipy csc/csr sparse matrix (or array) unpickles into: its pickled state (the
    ``__dict__`` of the scipy object: ``data``, ``indices``, ``indptr``, ``_shape`` or
    ``shape``) kept as data, read by :func:`_dense_from_sparse`; no scipy code runs, and scipy
    need not be installed.

    Subclasses made by :func:`_sparse_stand_in` carry the storage format ("csc" or "csr") and
    the original ``module.name`` of the scipy class.
    """

    sparse_format = "csc"
    scipy_name = "scipy.sparse"
    state: object = None

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass  # protocol 2 rebuilds with cls.__new__ and then the state; a call brings no state

    def __setstate__(self, state: object) -> None:
        self.state = state


@functools.cache
def _sparse_stand_in(sparse_format: str, qualified_name: str) -> type[_SparseStandIn]:
    """Return the stand-in class for the scipy class ``qualified_name`` (one per name)."""
    return type(
        "SparseStandIn",
        (_SparseStandIn,),
        {"sparse_format": sparse_format, "scipy_name": qualified_name},
    )


def _reconstruct_ndarray(subtype: object, shape: object, dtype: object) -> np.ndarray:
    """numpy's ``_reconstruct``, limited to plain ``ndarray`` (no subclass can be smuggled in)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array reconstruction of {subtype!r} (only numpy.ndarray)")
    reconstruct = np.empty(0).__reduce__()[0]  # numpy's own _reconstruct, under any numpy version
    return reconstruct(np.ndarray, shape, dtype)


def _latin1_encode(text: object, encoding: object = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to store bytes in protocol 0-2 pickles."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for (str, 'latin1')")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    """``bytes()`` as Python 3 uses it to store an empty bytes object in protocol 0-2 pickles."""
    if args:
        raise pickle.UnpicklingError("builtins.bytes is allowed only without arguments")
    return b""


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """Map each allowed ``(module, name)`` a pickle may name to the object it gets instead.

    Both numpy spellings are listed (``numpy.core`` written by numpy 1, ``numpy._core`` by
    numpy 2), each mapped to what this process has, and the scipy module paths of old and new
    scipy, each mapped to a stand-in.
    """
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
        # chumpy's state holds a set of names (``_dirty_vars``); Python 2 pickles sets by a call.
        ("__builtin__", "set"): set,
        ("builtins", "set"): set,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _reconstruct_ndarray
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for fmt in ("csc", "csr"):
        for kind in ("matrix", "array"):
            name = f"{fmt}_{kind}"
            for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
                allowed[(module, name)] = _sparse_stand_in(fmt, f"{module}.{name}")
        qualified = f"scipy.sparse._arrays.{fmt}_array"
        allowed[("scipy.sparse._arrays", f"{fmt}_array")] = _sparse_stand_in(fmt, qualified)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals and turns chumpy into stand-ins."""

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for ``module.name``, or refuse it before anything runs."""
        allowed = _allowed_globals().get((module, name))
        if allowed is not None:
            return allowed
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_stand_in(f"{module}.{name}")
        raise ModelFileError(
            f"{self._source}: refused to load '{module}.{name}': a MANO file may hold only numpy "
            "arrays, scipy sparse matrices and chumpy arrays (anything else could run code)"
        )

    def persistent_load(self, pid: object) -> Any:
        """Refuse persistent ids: MANO pickles have none."""
        raise ModelFileError(f"{self._source}: refused a persistent id in the pickle")


def _unpickle(data: bytes, source: str) -> object:
    """Unpickle ``data`` restrictedly; any failure becomes a ModelFileError naming ``source``."""
    try:
        return _RestrictedUnpickler(data, source).load()
    except ModelFileError:
        raise
    except Exception as exc:  # a corrupt pickle raises almost any type; all mean the same here
        raise ModelFileError(
            f"{source}: not a readable MANO pickle ({type(exc).__name__}: {exc})"
        ) from exc


# --------------------------------------------------------------------------------------------
# Turning what was unpickled into plain values
# --------------------------------------------------------------------------------------------


def _chumpy_array(obj: _ChumpyStandIn, key: str, source: str) -> np.ndarray:
    """Return the array a plain chumpy ``Ch`` holds under ``'x'``; refuse derived expressions."""
    state = obj.state
    x = state.get("x") if isinstance(state, dict) else None
    if isinstance(x, np.ndarray | np.generic | int | float):
        return np.asarray(x)
    raise ModelFileError(
        f"{source}: key '{key}' holds a chumpy object ({obj.chumpy_name}) with no array under "
        "'x' (a derived chumpy expression); only plain chumpy arrays can be read"
    )


def _sparse_parts(obj: _SparseStandIn) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """``data``, ``indices``, ``indptr`` and ``(rows, columns)`` from a stand-in's state, with
    their types checked (not yet their consistency)."""
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slots) from a class with slots
        state = {**(state[0] or {}), **(state[1] or {})}
    if not isinstance(state, dict):
        raise ValueError(f"its pickled state is a {type(state).__name__}, not a dict")
    data, indices, indptr = (state.get(name) for name in ("data", "indices", "indptr"))
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (data, indices, indptr)):
        raise ValueError("data, indices or indptr is not a 1-D array")
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise ValueError("indices or indptr is not an integer array")
    if data.dtype.kind not in "biufc":
        raise ValueError(f"data has dtype {data.dtype}")
    shape = state.get("_shape", state.get("shape"))
    if not isinstance(shape, tuple) or len(shape) != 2:
        raise ValueError(f"shape {shape!r} is not a pair")
    shape = (operator.index(shape[0]), operator.index(shape[1]))
    if min(shape) < 0:
        raise ValueError(f"shape {shape} is negative")
    return data, indices, indptr, shape


def _dense_from_sparse(obj: _SparseStandIn, key: str, source: str) -> np.ndarray:
    """The dense array of an unpickled csc/csr matrix, as scipy's ``toarray()`` gives it.

    The parts are checked as scipy's ``check_format(full_check=True)`` does: one index pointer
    per major line plus one, starting at 0 and never decreasing, at most as many stored entries
    as indices and values, and every index inside the matrix. Duplicate entries are summed.
    """
    try:
        data, indices, indptr, shape = _sparse_parts(obj)
        csc = obj.sparse_format == "csc"
        major, minor = (shape[1], shape[0]) if csc else shape
        if len(indptr) != major + 1:
            raise ValueError(f"index pointer has {len(indptr)} entries, expected {major + 1}")
        if len(indices) != len(data):
            raise ValueError("indices and data do not have the same size")
        if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] > len(indices):
            raise ValueError("the index pointer does not run from 0 up to the number of entries")
        stored = int(indptr[-1])
        minor_ids, values = indices[:stored], data[:stored]
        if stored and (minor_ids.min() < 0 or minor_ids.max() >= minor):
            raise ValueError(f"indices outside 0..{minor - 1}")
        major_ids = np.repeat(np.arange(major), np.diff(indptr))
        dense = np.zeros(shape, dtype=data.dtype)
        np.add.at(dense, (minor_ids, major_ids) if csc else (major_ids, minor_ids), values)
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise ModelFileError(
            f"{source}: key '{key}' is a broken sparse matrix ({obj.scipy_name}: {exc})"
        ) from exc
    return dense


def _is_scipy_sparse(value: object) -> bool:
    """Whether ``value`` is a scipy sparse matrix, without importing scipy (one implies it is)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(value)


def _plain_dict(loaded: object, source: str) -> dict[str, Any]:
    """Check the top level is a dict of text keys; turn chumpy and sparse values into arrays."""
    if not isinstance(loaded, dict):
        raise ModelFileError(
            f"{source}: the pickle holds a {type(loaded).__name__}, not a dict of model arrays"
        )
    plain: dict[str, Any] = {}
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise ModelFileError(f"{source}: the model dict has a non-text key {key!r}")
        if isinstance(value, _ChumpyStandIn):
            value = _chumpy_array(value, key, source)
        elif isinstance(value, _SparseStandIn):
            value = _dense_from_sparse(value, key, source)
        plain[key] = value
    return plain


# --------------------------------------------------------------------------------------------
# Checking MANO's key layout
# --------------------------------------------------------------------------------------------


def _type_problems(model: Mapping[str, Any]) -> list[str]:
    """List required values that are not finite numeric arrays (faces and tree: integers)."""
    problems = []
    for key in REQUIRED_KEYS:
        value = model[key]
        if key == "J_regressor" and _is_scipy_sparse(value):  # handed in, never loaded
            value = value.data
        if not isinstance(value, np.ndarray):
            problems.append(f"{key} is a {type(value).__name__}, not a numpy array")
            continue
        kinds = "iu" if key in ("f", "kintree_table") else "iuf"
        if value.dtype.kind not in kinds:
            problems.append(f"{key} has dtype {value.dtype}")
        elif value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{key} has values that are not finite")
    return problems


def _shape_problem(key: str, shape: tuple[int, ...], expected: tuple[int | None, ...]) -> list[str]:
    """Return ``[message]`` when ``shape`` does not match ``expected`` (None: any size > 0)."""
    fits = len(shape) == len(expected) and all(
        n == want if want is not None else n > 0 for n, want in zip(shape, expected, strict=False)
    )
    if fits:
        return []
    text = ", ".join("?" if want is None else str(want) for want in expected)
    text += "," if len(expected) == 1 else ""
    return [f"{key} has shape {tuple(shape)}, expected ({text})"]


def _parent_problems(kintree: np.ndarray) -> list[str]:
    """Each non-root joint's parent must be an earlier joint (smplx poses joints in order)."""
    parents = kintree[0].astype(np.int64)
    bad = [i for i in range(1, len(parents)) if not 0 <= parents[i] < i]
    return [f"kintree_table: joints {bad} do not have an earlier joint as parent"] if bad else []


def _shape_problems(model: Mapping[str, Any]) -> list[str]:
    """List inconsistencies between the arrays; V and J come from v_template and kintree_table."""
    verts, tree = model["v_template"], model["kintree_table"]
    problems = _shape_problem("v_template", verts.shape, (None, 3))
    problems += _shape_problem("kintree_table", tree.shape, (2, None))
    if problems:
        return problems
    n_verts, n_joints = verts.shape[0], tree.shape[1]
    pose_dims = 3 * (n_joints - 1)
    faces = model["f"]
    problems += _shape_problem("shapedirs", model["shapedirs"].shape, (n_verts, 3, None))
    problems += _shape_problem("posedirs", model["posedirs"].shape, (n_verts, 3, 3 * pose_dims))
    problems += _shape_problem("J_regressor", model["J_regressor"].shape, (n_joints, n_verts))
    problems += _shape_problem("weights", model["weights"].shape, (n_verts, n_joints))
    problems += _shape_problem(
        "hands_components", model["hands_components"].shape, (None, pose_dims)
    )
    problems += _shape_problem("hands_mean", model["hands_mean"].shape, (pose_dims,))
    problems += _shape_problem("f", faces.shape, (None, 3))
    if faces.size and (faces.min() < 0 or faces.max() >= n_verts):
        problems.append(f"f has vertex indices outside 0..{n_verts - 1}")
    return problems + _parent_problems(tree)


def validate_mano_model(model: Mapping[str, Any], source: str) -> None:
    """Check ``model`` has MANO's keys with consistent, finite arrays; raise ModelFileError if not.

    Sizes are read from the model (V from ``v_template``, J from ``kintree_table``), never assumed,
    so a model of another topology in the same layout passes.
    """
    missing = [key for key in REQUIRED_KEYS if key not in model]
    if missing:
        raise ModelFileError(
            f"{source}: missing MANO keys: {', '.join(missing)} "
            f"(a MANO model needs {', '.join(REQUIRED_KEYS)})"
        )
    problems = _type_problems(model) or _shape_problems(model)
    if problems:
        raise ModelFileError(f"{source}: not a usable MANO model: {'; '.join(problems)}")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_mano_pickle(path: str | Path) -> dict[str, Any]:
    """Load a MANO-layout pickle into a dict of plain values, never running code from the file.

    Chumpy arrays become numpy arrays, csc/csr sparse matrices (MANO's ``J_regressor``) dense
    numpy arrays equal to their ``toarray()`` (checked and built without scipy), other values
    (``bs_style`` and the like) stay as they are. The MANO keys are
    checked for presence and consistent shapes. Every refusal is a ModelFileError naming ``path``.
    """
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read the MANO file ({exc.strerror})") from exc
    model = _plain_dict(_unpickle(data, source), source)
    try:
        validate_mano_model(model, source)
    except (SystemError, RuntimeError) as exc:
        # A damaged dtype in the pickle (numpy rebuilds it from the file's bytes) can leave an
        # array numpy itself cannot reduce; found by the fuzz test of damaged files.
        raise ModelFileError(f"{source}: not a readable MANO file (damaged array: {exc})") from exc
    return model


def fix_left_shapedirs(
    left: Mapping[str, Any], right: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Return ``(left model, fixed)`` with the official MANO_LEFT.pkl shapedirs bug repaired.

    In the released left hand the x components of ``shapedirs`` are the right hand's instead of
    mirrored ones, so shape changes push the left hand's vertices the wrong way along x. The bug
    is detected as the official code does (x components differ by an absolute sum under 1) and
    only then negated; a correct file is returned unchanged. The inputs are never modified: the
    result is a new dict, with a new shapedirs array when fixed.
    """
    if "shapedirs" not in left or "shapedirs" not in right:
        raise ModelFileError("cannot compare hands: a model has no shapedirs")
    left_dirs, right_dirs = np.asarray(left["shapedirs"]), np.asarray(right["shapedirs"])
    if left_dirs.shape != right_dirs.shape or left_dirs.ndim != 3 or left_dirs.shape[1] != 3:
        raise ModelFileError(
            f"left and right shapedirs do not form a MANO pair: shapes {left_dirs.shape} and "
            f"{right_dirs.shape}"
        )
    result = dict(left)
    x_difference = np.abs(left_dirs[:, 0, :].astype(np.float64) - right_dirs[:, 0, :]).sum()
    if x_difference >= _LEFT_BUG_THRESHOLD:
        return result, False
    fixed = np.array(left_dirs, copy=True)
    fixed[:, 0, :] *= -1
    result["shapedirs"] = fixed
    return result, True


def load_mano_pair(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Load ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` from ``folder`` as ``{"right", "left"}``.

    The left hand's shapedirs bug is fixed when the file has it (see
    :func:`fix_left_shapedirs`). A missing folder or file is a ModelFileError that names it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: MANO folder not found; {_LICENSE_NOTE}")
    for name in (RIGHT_FILE, LEFT_FILE):
        if not (folder / name).is_file():
            raise ModelFileError(f"{folder / name}: {name} not found; {_LICENSE_NOTE}")
    right = load_mano_pickle(folder / RIGHT_FILE)
    left, fixed = fix_left_shapedirs(load_mano_pickle(folder / LEFT_FILE), right)
    if fixed:
        log.info("%s: fixed the known left-hand shapedirs bug", folder / LEFT_FILE)
    return {"right": right, "left": left}


def to_smplx_struct(model: Mapping[str, Any]) -> smplx.utils.Struct:
    """Wrap a MANO-layout model for ``smplx.MANO(model_path=..., data_struct=...)``.

    smplx reads the arrays as they are (dense or sparse ``J_regressor``); ``model_path`` must
    still be passed but is not read when ``data_struct`` is given. smplx is imported here, not at
    module import, because it pulls in torch.
    """
    from smplx.utils import Struct

    validate_mano_model(model, "model given to smplx")
    return Struct(**dict(model))
