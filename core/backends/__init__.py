"""Reconstruction backends: a batch of RGB frames in, per frame and hand one observation out.

Each backend module defines a class with ``name``, ``from_models_dir(models_dir, ...)`` (which
says exactly what is missing when it cannot run) and ``__call__(frames) -> list[Frame]``
(see ``handmocap.core.observation``).
"""
