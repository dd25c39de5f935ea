"""Make packages look uninstalled in a subprocess: what Blender's bundled Python lacks.

Blender's Python 3.11 has numpy but none of the heavy packages that the rest of handmocap uses.
A test that must prove some code runs there prepends :func:`blocker_source` to the script it
runs in a fresh interpreter (``subprocess.run([sys.executable, "-c", script])``); from then on
importing a blocked package, or any of its submodules, raises ``ModuleNotFoundError`` naming
it, as it would in Blender, with a traceback that shows who asked.

One difference from a package that is really missing: ``importlib.util.find_spec(name)``
raises ``ModuleNotFoundError`` for a blocked name instead of returning None (as it does when a
parent package is missing); code that probes with it should catch that.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

#: What Blender's bundled Python does not have (it does have numpy).
BLENDER_ABSENT = ("torch", "torchvision", "scipy", "smplx", "cv2", "mediapipe", "av")


def blocker_source(names: Iterable[str] = BLENDER_ABSENT) -> str:
    """Python source that blocks importing ``names`` (and their submodules) from then on.

    Prepend it to a subprocess's script. It installs a ``sys.meta_path`` finder ahead of all
    others and fails at once if one of ``names`` was imported before it ran. ``names`` may be
    dotted (``"scipy.sparse"`` blocks that package and what lies below it, not ``scipy``).
    The names stay available to the script as ``BLOCKED_IMPORTS``.
    """
    blocked = tuple(names)
    if not all(isinstance(name, str) and name for name in blocked):
        raise ValueError(f"module names must be non-empty strings, got {blocked!r}")
    return textwrap.dedent(
        f"""\
        import sys as _sys

        BLOCKED_IMPORTS = {blocked!r}


        class _BlockedImports:
            \"\"\"A meta path finder that refuses the blocked modules.\"\"\"

            @staticmethod
            def find_spec(fullname, path=None, target=None):
                for name in BLOCKED_IMPORTS:
                    if fullname == name or fullname.startswith(name + "."):
                        raise ModuleNotFoundError(
                            f"No module named {{fullname!r}} (blocked: {{name}} is absent here)",
                            name=fullname,
                        )
                return None


        _loaded = sorted(
            module
            for module in _sys.modules
            for name in BLOCKED_IMPORTS
            if module == name or module.startswith(name + ".")
        )
        if _loaded:
            raise RuntimeError(f"already imported before the import blocker: {{_loaded}}")
        _sys.meta_path.insert(0, _BlockedImports())
        del _loaded
        """
    )
