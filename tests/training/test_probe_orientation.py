"""``tools/probe_orientation.py``, the diagnostic that asks whether a config learns orientation:
on a handful of samples, which a network memorises, the angle error falls."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_probe_memorises_a_few_samples(capsys):
    spec = importlib.util.spec_from_file_location("probe", ROOT / "tools" / "probe_orientation.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    errors = probe.main([str(ROOT / "configs" / "acr_light.toml"),
                         "--data", str(ROOT / "tests" / "data" / "synth_test16"),
                         "--steps", "40", "--batch-size", "8", "--every", "20"])  # fmt: skip
    assert len(errors) == 40 and all(0 <= e <= 180 for e in errors)
    assert np.mean(errors[-10:]) < 0.7 * np.mean(errors[:10]), errors
    assert "step 40: median angle error" in capsys.readouterr().out
