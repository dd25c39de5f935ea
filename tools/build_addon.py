"""Build the Blender extension zip (``make addon``): ``dist/handmocap-VERSION.zip``.

The zip holds the extension's entry point and manifest (``blender_addon/extension``) and one
wheel: the pieces of handmocap that run inside Blender (``handmocap.core``'s modules with the
open hand model, ``handmocap.blender_addon``). Blender installs the wheel into its extensions'
own site-packages when the extension is installed; nothing is pip-installed into Blender's
Python and nothing is downloaded. Everything the add-on imports inside Blender needs only the
standard library and numpy, which Blender bundles; torch and the backends run in the external
Python set in the add-on's preferences.

The zip itself is made by Blender's own extension builder (``blender_ext.py build``, shipped
with the ``bpy`` module), which checks the manifest as Blender's extension platform does.

Usage: ``python tools/build_addon.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "blender_addon" / "extension"
# package folder in the repository -> its import path; the wheel holds these and nothing else
PACKAGES = {"core": "handmocap/core", "blender_addon": "handmocap/blender_addon"}
# the demo clip is for `make demo` and the network weights for the external Python, not Blender
SKIP_DIRS = {"__pycache__", "extension", "demo", "acr_open"}
DATA_SUFFIXES = {".pkl", ".npz", ".md"}  # the open hand model and its notes


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _wheel_files() -> dict[str, Path]:
    """Archive name -> file, for every module and data file the wheel carries."""
    files = {}
    for folder, target in PACKAGES.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*")):
            parts = path.relative_to(base).parts
            if not path.is_file() or SKIP_DIRS.intersection(parts[:-1]):
                continue
            if path.suffix == ".py" or path.suffix in DATA_SUFFIXES:
                files[f"{target}/{'/'.join(parts)}"] = path
    return files


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(out_dir: Path, version: str) -> Path:
    """A pure-Python wheel (PEP 427) of the Blender-side pieces; -> its path."""
    info = f"handmocap-{version}.dist-info"
    meta = {
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: handmocap\nVersion: {version}\n"
            "Summary: handmocap's Blender-side modules (bundled by the Hand Mocap extension)\n"
            "License: GPL-3.0-or-later\nRequires-Python: >=3.11\n"
        ),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: handmocap tools/build_addon.py\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    wheel = out_dir / f"handmocap-{version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, path in _wheel_files().items():
            data = path.read_bytes()
            z.writestr(name, data)
            records.append(_record_line(name, data))
        for name, text in meta.items():
            z.writestr(name, text)
            records.append(_record_line(name, text.encode()))
        records.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel


def blender_ext_script() -> Path:
    """Blender's extension command line, as shipped inside the ``bpy`` module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("make addon needs the bpy module (make test or make demo installs it)")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"Blender's extension builder is missing from {Path(spec.origin).parent}")
    return found[-1]


def build(out: Path) -> Path:
    """Stage the extension, build its zip into ``out``; -> the zip's path."""
    version = _version()
    manifest = (EXTENSION / "blender_manifest.toml").read_text()
    if tomllib.loads(manifest)["version"] != version:
        raise SystemExit(
            f"{EXTENSION / 'blender_manifest.toml'}: version is not pyproject.toml's {version}"
        )
    stage = ROOT / "build" / "addon" / "handmocap"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "wheels").mkdir(parents=True)
    shutil.copy2(EXTENSION / "__init__.py", stage / "__init__.py")
    wheel = build_wheel(stage / "wheels", version)
    # top-level keys go before the first table ([permissions])
    head, table, rest = manifest.partition("\n[")
    manifest = f'{head}\nwheels = ["./wheels/{wheel.name}"]\n{table}{rest}'
    (stage / "blender_manifest.toml").write_text(manifest)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"handmocap-{version}.zip"
    done = subprocess.run(
        [sys.executable, str(blender_ext_script()), "build", "--source-dir", str(stage),
         "--output-filepath", str(target)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0 or not target.is_file():
        raise SystemExit(f"Blender's extension builder failed:\n{done.stdout}{done.stderr}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip")
    target = build(parser.parse_args().out)
    print(f"{target} ({target.stat().st_size / 2**20:.1f} MiB): install it in Blender from "
          "Edit > Preferences > Get Extensions > Install from Disk")  # fmt: skip


if __name__ == "__main__":
    main()
