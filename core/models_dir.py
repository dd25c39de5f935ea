"""The models folder: what handmocap finds there and what each backend still lacks.

Layout (a flag ``--models``, the ``HANDMOCAP_MODELS`` environment variable, or the add-on
preference)::

    MODELS/mano/MANO_RIGHT.pkl, MANO_LEFT.pkl   MANO, licensed by MPI (never shipped)
    MODELS/acr/wild.pkl                          ACR's official in-the-wild release
    MODELS/dir/DIR.pth                           DIR's official checkpoint

The open hand model ships with handmocap and is always available, and so do handmocap's own
light ACR weights (``assets/acr_open``: trained on synthetic hands of the open hand model), which
the acr backend runs while the official checkpoint or the MANO files are missing.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

# Paths only: importing this module loads neither torch nor any model, so a command can decide
# what to run (and start on it) before paying for those imports.
SIDES = ("left", "right")
OPEN_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "openhand"
MODELS_ENV = "HANDMOCAP_MODELS"
ACR_CHECKPOINT = Path("acr") / "wild.pkl"
DIR_CHECKPOINT = Path("dir") / "DIR.pth"
OPEN_ACR_DIR = Path(__file__).resolve().parent / "assets" / "acr_open"
OPEN_ACR_WEIGHTS = OPEN_ACR_DIR / "acr_open.pt"
# What a take records as its checkpoint: the official file's place in the models folder, or this.
OPEN_ACR_CHECKPOINT = "handmocap/acr_open.pt"
ACR_WEIGHTS = ("auto", "official", "open")


def default_models_dir() -> Path | None:
    """The models folder from ``$HANDMOCAP_MODELS``, or None."""
    value = os.environ.get(MODELS_ENV)
    return Path(value).expanduser() if value else None


def models_dir_option(given: Path | None) -> Path | None:
    """The models folder a command uses: ``given`` (its ``--models``), else
    ``$HANDMOCAP_MODELS``, else None; one that is not a folder is refused."""
    from handmocap.core.errors import HandmocapError

    folder = given if given is not None else default_models_dir()
    if folder is not None and not folder.is_dir():
        raise HandmocapError(f"models folder {folder} does not exist or is not a folder")
    return folder


def model_kind(model_id: str) -> str:
    """The hand model kind (``mano`` or ``openhand``) of an id recorded in a take."""
    return "mano" if model_id.startswith("mano") else "openhand"


def check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return side


def open_model_path(side: str) -> Path:
    return OPEN_MODEL_DIR / f"OPENHAND_{check_side(side).upper()}.pkl"


def mano_model_path(models_dir: Path, side: str) -> Path:
    return Path(models_dir) / "mano" / f"MANO_{check_side(side).upper()}.pkl"


# Each network backend's official checkpoint: path in the models folder, and what it is.
CHECKPOINTS = {
    "acr": (
        ACR_CHECKPOINT,
        "ACR's official checkpoint wild.pkl (from the ACR repository's README)",
    ),
    "dir": (DIR_CHECKPOINT, "DIR's official checkpoint DIR.pth (from the DIR repository's README)"),
}


def missing_files(backend: str, models_dir: Path | None) -> list[str]:
    """What a network backend ("acr", "dir") still needs, each with where to put it."""
    where = Path(models_dir) if models_dir else Path("MODELS")
    checkpoint, what = CHECKPOINTS[backend]
    needs = [
        (where / checkpoint, what),
        (mano_model_path(where, "right"), "MANO_RIGHT.pkl (licensed by MPI: mano.is.tue.mpg.de)"),
        (mano_model_path(where, "left"), "MANO_LEFT.pkl (licensed by MPI: mano.is.tue.mpg.de)"),
    ]
    if models_dir is None:
        return [f"{what}: put it at {path} and pass --models MODELS" for path, what in needs]
    return [f"{what}: expected at {path}" for path, what in needs if not path.is_file()]


def acr_missing_files(models_dir: Path | None) -> list[str]:
    """What the acr backend still needs for the official weights, each with where to put it."""
    return missing_files("acr", models_dir)


def acr_weights(models_dir: Path | None, weights: str = "auto") -> str:
    """The weights the acr backend runs with: "official" (``wild.pkl`` with MANO) or "open"
    (handmocap's own, with the open hand model). ``auto`` takes the official ones when their
    files are all there."""
    from handmocap.core.errors import HandmocapError

    if weights not in ACR_WEIGHTS:
        raise HandmocapError(f"acr weights must be one of {', '.join(ACR_WEIGHTS)}: {weights!r}")
    missing = acr_missing_files(models_dir) if weights != "open" else []
    if weights == "official" or (weights == "auto" and not missing):
        if missing:
            raise HandmocapError("the acr backend's official weights cannot run yet: "
                                 + "; ".join(missing))  # fmt: skip
        return "official"
    if not OPEN_ACR_WEIGHTS.is_file():
        raise HandmocapError(
            f"handmocap's own acr weights are missing from this installation ({OPEN_ACR_WEIGHTS})"
            + ("; for the official ones: " + "; ".join(missing) if missing else "")
        )
    return "open"


def describe_acr_weights(choice: str) -> str:
    """A phrase for messages: which ACR weights run."""
    if choice == "official":
        return "ACR's official weights with the MANO files"
    return "handmocap's own light ACR weights (synthetic training, open hand model)"


@dataclass(frozen=True)
class Requirement:
    what: str  # human description
    path: str  # relative to the models folder, or a Python package name for kind "package"
    kind: str = "file"  # "file" or "package"


# What each backend needs besides the open hand model.
BACKENDS: dict[str, tuple[Requirement, ...]] = {
    "acr": (
        Requirement("ACR checkpoint (official wild.pkl)", "acr/wild.pkl"),
        Requirement("MANO right hand (ACR was trained with MANO)", "mano/MANO_RIGHT.pkl"),
        Requirement("MANO left hand", "mano/MANO_LEFT.pkl"),
    ),
    "dir": (
        Requirement("DIR checkpoint (official DIR.pth)", "dir/DIR.pth"),
        Requirement("MANO right hand (DIR was trained with MANO)", "mano/MANO_RIGHT.pkl"),
        Requirement("MANO left hand", "mano/MANO_LEFT.pkl"),
    ),
    "mediapipe": (Requirement("mediapipe 0.10.21 Python package", "mediapipe", "package"),),
}


@dataclass
class BackendStatus:
    name: str
    code_present: bool  # the backend module exists in this version of handmocap
    missing: list[str] = field(default_factory=list)
    fallback: str = ""  # what it runs with while ``missing`` is not empty (acr: its own weights)

    @property
    def ready(self) -> bool:
        return self.code_present and (not self.missing or bool(self.fallback))


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _present(req: Requirement, models_dir: Path | None) -> bool:
    if req.kind == "package":
        return _module_exists(req.path)
    return models_dir is not None and (models_dir / req.path).is_file()


def backend_status(models_dir: Path | None) -> list[BackendStatus]:
    statuses = []
    for name, reqs in BACKENDS.items():
        code = _module_exists(f"handmocap.core.backends.{name}")
        missing = [
            f"{r.what}: {models_dir / r.path if models_dir and r.kind == 'file' else r.path}"
            for r in reqs
            if not _present(r, models_dir)
        ]
        fallback = ""
        if name == "acr" and missing and OPEN_ACR_WEIGHTS.is_file():
            fallback = describe_acr_weights("open")
        statuses.append(BackendStatus(name, code, missing, fallback))
    return statuses


def scan(models_dir: Path | None) -> dict:
    """Everything found: hand models, checkpoints and backends, as a JSON-ready dict."""
    hand_models = [
        {"name": "openhand", "available": True, "files": [str(open_model_path(s)) for s in SIDES]}
    ]
    if models_dir is None:
        mano = {"available": False, "files": [], "missing": ["no models folder given"]}
    else:
        paths = [mano_model_path(models_dir, s) for s in SIDES]
        mano = {
            "available": all(p.is_file() for p in paths),
            "files": [str(p) for p in paths if p.is_file()],
            "missing": [str(p) for p in paths if not p.is_file()],
        }
    hand_models.append({"name": "mano", **mano})
    checkpoints = []
    for name, reqs in BACKENDS.items():
        for r in reqs:
            if r.kind == "file" and not r.path.startswith("mano/"):
                path = models_dir / r.path if models_dir else None
                found = path is not None and path.is_file()
                checkpoints.append({"backend": name, "file": r.path, "found": found,
                                    "path": str(path) if found else None})  # fmt: skip
    shipped = [{"backend": "acr", "file": str(OPEN_ACR_WEIGHTS),
                "found": OPEN_ACR_WEIGHTS.is_file(), "hand_model": "openhand",
                "about": str(OPEN_ACR_DIR / "README.md")}]  # fmt: skip
    backends = [
        {
            "name": b.name,
            "ready": b.ready,
            "code_present": b.code_present,
            "missing": b.missing,
            "fallback": b.fallback,
        }  # fmt: skip
        for b in backend_status(models_dir)
    ]
    return {
        "models_dir": str(models_dir) if models_dir else None,
        "hand_models": hand_models,
        "checkpoints": checkpoints,
        "shipped": shipped,
        "backends": backends,
    }
