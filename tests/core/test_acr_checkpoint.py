"""Loading ACR checkpoints in the official format, and refusing everything else clearly.

The files here are synthetic: the port's full-size state dict renamed to the official names
(``module.`` prefix), plus the official ``segmentation_layers`` tensors that the port drops,
with the shapes of the frozen official key list. Every failure must be one ``ModelFileError``
whose message names the file (and the offending key where there is one).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from handmocap.core.acr.checkpoint import (
    load_official_acr,
    official_to_port,
    port_to_official,
    read_state_dict,
)
from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.errors import ModelFileError

DATA = Path(__file__).resolve().parents[1] / "data"
DROPPED_PREFIX = "module.segmentation_layers."
LEFT_PARAMS_CONV = "module.l_final_layers.1.0.0.weight"  # (64, 34, 3, 3) in the official net


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def distinct_values(shape: list[int], generator: torch.Generator, key: str) -> torch.Tensor:
    """Values that differ from any fresh initialisation (and stay valid for BN buffers)."""
    if key.endswith("num_batches_tracked"):
        return torch.randint(1, 10_000, shape, generator=generator, dtype=torch.long)
    values = torch.randn(shape, generator=generator)
    return values.abs() + 0.5 if key.endswith("running_var") else values


@pytest.fixture(scope="module")
def model() -> ACR:
    """One full-size model: the target of the failing loads (they raise before filling it)."""
    return ACR.from_config(ACRConfig())


@pytest.fixture(scope="module")
def official_keys() -> dict[str, list[int]]:
    return json.loads((DATA / "acr_official_keys.json").read_text())


@pytest.fixture(scope="module")
def official(model: ACR, official_keys: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A state dict in the official naming, with every official key (the dropped ones too)."""
    generator = torch.Generator().manual_seed(0)
    state = {
        key: distinct_values(list(value.shape), generator, key)
        for key, value in port_to_official(model.state_dict()).items()
    }
    for key, shape in official_keys.items():
        if key.startswith(DROPPED_PREFIX):
            state[key] = distinct_values(shape, generator, key)
    assert set(state) == set(official_keys)
    return state


def save(tmp_path: Path, data: object, name: str = "wild.pkl") -> Path:
    path = tmp_path / name
    torch.save(data, path)
    return path


def assert_filled_with(model: ACR, official: dict[str, torch.Tensor]) -> None:
    """Every tensor of the model equals the file's tensor of the official name."""
    expected, unknown = official_to_port(official)
    assert not unknown
    state = model.state_dict()
    assert set(state) == set(expected)
    for key, value in state.items():
        assert value.dtype == expected[key].dtype, key
        assert torch.equal(value, expected[key]), key


def load_error(model: ACR, path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        load_official_acr(model, path)
    message = str(info.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model_state_dict"])
def test_official_file_fills_every_tensor(tmp_path, official, wrapper):
    path = save(tmp_path, official if wrapper is None else {wrapper: official, "epoch": 3})
    fresh = ACR.from_config(ACRConfig())
    load_official_acr(fresh, path)
    assert_filled_with(fresh, official)


def test_keys_without_the_module_prefix_load(tmp_path, official):
    bare = {key.removeprefix("module."): value for key, value in official.items()}
    assert not any(key.startswith("module.") for key in bare)
    fresh = ACR.from_config(ACRConfig())
    load_official_acr(fresh, save(tmp_path, bare))
    assert_filled_with(fresh, official)


def test_missing_key_is_named(tmp_path, model, official):
    state = dict(official)
    del state[LEFT_PARAMS_CONV]
    message = load_error(model, save(tmp_path, state))
    assert "missing" in message
    assert LEFT_PARAMS_CONV in message
    assert "unexpected" not in message and "wrong shape" not in message


def test_dropped_official_keys_are_not_required(tmp_path, official):
    """The unused ``segmentation_layers`` may be absent: the port has nothing to fill from them."""
    state = {k: v for k, v in official.items() if not k.startswith(DROPPED_PREFIX)}
    assert len(state) < len(official)
    fresh = ACR.from_config(ACRConfig())
    load_official_acr(fresh, save(tmp_path, state))
    assert_filled_with(fresh, official)


@pytest.mark.parametrize("extra", ["module.extra.weight", "module.backbone.extra.weight"])
def test_unexpected_key_is_named(tmp_path, model, official, extra):
    message = load_error(model, save(tmp_path, {**official, extra: torch.zeros(3)}))
    assert "unexpected" in message
    assert extra in message
    assert "missing" not in message


def test_wrong_shape_names_key_and_both_shapes(tmp_path, model, official):
    state = dict(official)
    state[LEFT_PARAMS_CONV] = torch.zeros(64, 35, 3, 3)
    message = load_error(model, save(tmp_path, state))
    assert "wrong shape" in message
    assert LEFT_PARAMS_CONV in message
    assert "(64, 35, 3, 3)" in message and "(64, 34, 3, 3)" in message


def test_every_problem_is_reported_at_once(tmp_path, model, official):
    state = dict(official)
    del state[LEFT_PARAMS_CONV]
    state["module.extra.weight"] = torch.zeros(1)
    state["module.r_final_layers.2.2.bias"] = torch.zeros(2)  # the centre map: 1 channel
    message = load_error(model, save(tmp_path, state))
    for expected in (LEFT_PARAMS_CONV, "module.extra.weight", "module.r_final_layers.2.2.bias"):
        assert expected in message


class NotWeights:
    """A custom class: a weights-only load must refuse to rebuild it."""

    def __init__(self) -> None:
        self.weights = {"a": torch.zeros(2)}


class RunsCommand:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_custom_class_pickle_is_refused(tmp_path, model):
    message = load_error(model, save(tmp_path, NotWeights()))
    assert "weights-only" in message


@pytest.mark.skipif(sys.platform == "win32", reason="the payload uses touch")
@pytest.mark.parametrize("how", ["pickle", "torch.save", "wrapped"])
def test_code_running_pickle_is_refused_and_not_run(tmp_path, model, how):
    marker = tmp_path / "marker"
    payload = RunsCommand(marker)
    # sanity: the payload really would run when unpickled without restriction
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "wild.pkl"
    if how == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif how == "torch.save":
        torch.save(payload, path)
    else:
        torch.save({"state_dict": {"module.backbone.conv1.weight": payload}}, path)
    load_error(model, path)
    assert not marker.exists()


def test_missing_file(tmp_path, model):
    message = load_error(model, tmp_path / "nowhere" / "wild.pkl")
    assert "not found" in message


def test_directory_is_not_a_file(tmp_path, model):
    load_error(model, tmp_path)


# Malformed files: torch.load fails on each in another way (UnpicklingError, EOFError, KeyError
# for an unknown opcode, IndexError for an empty stack, struct.error, a corrupt zip archive).
MALFORMED = {
    "empty": b"",
    "random": np.random.default_rng(0).bytes(4096),
    "html": b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n",
    "text": b"hello\n",
    "empty_stack": b"\x80\x02.",
    "short_read": b"\x80\x02j\x04\x1e",
    "zip_header": b"PK\x03\x04" + bytes(200),
    "protocol_only": b"\x80\x02",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_file_is_refused(tmp_path, model, name):
    path = tmp_path / "wild.pkl"
    path.write_bytes(MALFORMED[name])
    load_error(model, path)


@pytest.mark.parametrize(
    "data",
    [
        [torch.zeros(2)],
        {"module.backbone.conv1.weight": torch.zeros(2), "note": "text"},
        {"state_dict": [torch.zeros(2)]},
        torch.zeros(3),
    ],
    ids=["list", "non_tensor_value", "wrapped_list", "bare_tensor"],
)
def test_weights_only_but_not_a_state_dict(tmp_path, data):
    path = save(tmp_path, data)
    with pytest.raises(ModelFileError, match=re.escape(str(path)) + ".*no state dict"):
        read_state_dict(path)


def test_read_state_dict_unwraps_and_keeps_names(tmp_path, official):
    few = {k: official[k] for k in list(official)[:5]}
    for data in (few, {"state_dict": few}, {"model_state_dict": few}):
        read = read_state_dict(save(tmp_path, data))
        assert list(read) == list(few)
        assert all(torch.equal(read[k], few[k]) for k in few)
