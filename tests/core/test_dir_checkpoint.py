"""Loading DIR's official checkpoint: every key used or dropped by name, one clear error else.

``tests/data/dir_official_keys.json`` freezes the official network's state-dict keys and shapes
(written from the official code by ``tests/parity/make_dir_reference.py``; the hand-model
buffers with MANO's sizes, as the released file embeds MANO). The full-size port is built on the
meta device to compare against it; files are written with the tiny network, whose keys are the
same names with smaller shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from handmocap.core.dir.checkpoint import DROPPED, drop_reason, load_official_dir
from handmocap.core.dir.model import DIR, DIRConfig, pixel_centres
from handmocap.core.errors import ModelFileError
from handmocap.core.handmodel import load_hand_models

DATA = Path(__file__).resolve().parents[1] / "data"
KEYS = DATA / "dir_official_keys.json"
MANO_BUFFERS = {  # the ten buffers of each official MANO layer, with MANO's sizes
    "th_betas": (1, 10), "th_shapedirs": (778, 3, 10), "th_posedirs": (778, 3, 135),
    "th_v_template": (1, 778, 3), "th_J_regressor": (16, 778), "th_weights": (778, 16),
    "th_faces": (1538, 3), "th_hands_mean": (1, 45), "th_comps": (45, 45),
    "th_selected_comps": (45, 45),
}  # fmt: skip
MANO_LAYERS = [
    f"{owner}.mano_layer_{side}"
    for owner in (
        "init_regressor",
        "decoder.projecter_4.regressor",
        "decoder.projecter_3.regressor",
    )
    for side in ("left", "right")
]


@pytest.fixture(scope="module")
def models():
    return load_hand_models(None, "openhand")


@pytest.fixture(scope="module")
def official():
    return {k: tuple(v) for k, v in json.loads(KEYS.read_text()).items()}


def test_official_keys_fill_the_full_size_port_exactly(models, official):
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in DIR(DIRConfig(), models).state_dict().items()}
    kept = {k: v for k, v in official.items() if drop_reason(k) is None}
    assert set(kept) == set(ours)
    assert all(kept[k] == ours[k] for k in ours), [k for k in ours if kept[k] != ours[k]]
    dropped = sorted(set(official) - set(kept))
    expected = sorted(
        [f"{layer}.{b}" for layer in MANO_LAYERS for b in MANO_BUFFERS]
        + ["backbone.fc.weight", "backbone.fc.bias", "seg_loss.weight"]
        + [f"decoder.projecter_{i}.img_gird" for i in (4, 3)]
    )
    assert dropped == expected
    assert official["decoder.projecter_4.img_gird"] == (256, 2)
    assert official["decoder.projecter_3.img_gird"] == (1024, 2)
    assert all(drop_reason(k) in DROPPED.values() for k in dropped)
    # the released code's unused transformer block is in the file, and loaded
    assert "decoder.projecter_4.interaction.STEblocks.0.attn.qkv.weight" in kept


def official_file(model: DIR, mano_template=None) -> dict:
    """What the official ``train.py`` saves, for ``model``'s sizes, with random values."""
    g = torch.Generator().manual_seed(5)
    state = {k: torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()}
    for key in state:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
    for layer in MANO_LAYERS:
        for name, shape in MANO_BUFFERS.items():
            state[f"{layer}.{name}"] = torch.zeros(shape)
        if mano_template is not None:
            state[f"{layer}.th_v_template"] = mano_template[None]
    channels = model.backbone.feature_channels[-1]
    state["backbone.fc.weight"] = torch.zeros(1000, channels)
    state["backbone.fc.bias"] = torch.zeros(1000)
    state["seg_loss.weight"] = torch.tensor([0.1, 0.45, 0.45])
    for name, stage in (("projecter_4", model.decoder.projecter_4),
                        ("projecter_3", model.decoder.projecter_3)):  # fmt: skip
        state[f"decoder.{name}.img_gird"] = pixel_centres(stage.size)
    return {
        "net": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0, 1]}]},
        "schedule": {"T_max": 50, "eta_min": 0, "base_lrs": [5e-4], "last_epoch": 49},
        "last_epoch": 49,
    }


@pytest.fixture()
def tiny(models):
    torch.manual_seed(0)
    return DIR(DIRConfig.tiny(), models)


def save(tmp_path: Path, data) -> Path:
    path = tmp_path / "DIR.pth"
    torch.save(data, path)
    return path


def test_loads_every_parameter_and_warns_about_another_hand_model(tmp_path, tiny):
    data = official_file(tiny)
    warnings = load_official_dir(tiny, save(tmp_path, data))
    for key, value in tiny.state_dict().items():
        assert torch.equal(value, data["net"][key]), key
    # the file embeds MANO (778 vertices), the network poses the open hand model
    assert len(warnings) == 2 and all("trained with MANO" in w for w in warnings)


def test_no_warning_when_the_hand_models_agree(tmp_path, tiny):
    template = tiny.hands.buffer("left", "v_template")
    data = official_file(tiny, mano_template=template)
    for layer in MANO_LAYERS:
        if layer.endswith("right"):
            data["net"][f"{layer}.th_v_template"] = tiny.hands.buffer("right", "v_template")[None]
    assert load_official_dir(tiny, save(tmp_path, data)) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("decoder.seg.3.bias"), "missing: decoder.seg.3.bias"),
        (lambda s: s.update({"decoder.extra.weight": torch.zeros(1)}),
         "unexpected: decoder.extra.weight"),
        (lambda s: s.update({"init_regressor.offset.bias": torch.zeros(4)}),
         "wrong shape: init_regressor.offset.bias (4,) (model (3,))"),
    ],
)  # fmt: skip
def test_mismatches_are_one_error_naming_them(tmp_path, tiny, change, message):
    data = official_file(tiny)
    change(data["net"])
    with pytest.raises(ModelFileError, match="does not fit this DIR network") as err:
        load_official_dir(tiny, save(tmp_path, data))
    assert message in str(err.value)


def test_a_grid_for_another_map_size_is_refused(tmp_path, tiny):
    data = official_file(tiny)
    data["net"]["decoder.projecter_4.img_gird"] = pixel_centres(8)
    with pytest.raises(ModelFileError, match="8x8 map, this network's is 16"):
        load_official_dir(tiny, save(tmp_path, data))


def test_not_a_checkpoint(tmp_path, tiny):
    path = tmp_path / "DIR.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(ModelFileError, match="not a weights-only torch checkpoint"):
        load_official_dir(tiny, path)
    with pytest.raises(ModelFileError, match="not found"):
        load_official_dir(tiny, tmp_path / "missing.pth")


class Payload:
    """Unpickling this would create a file: a checkpoint must never run code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_runs_code(tmp_path, tiny):
    marker = tmp_path / "ran"
    data = official_file(tiny)
    data["optimizer"] = Payload(marker)
    path = save(tmp_path, data)
    with pytest.raises(ModelFileError, match="refused to unpickle"):
        load_official_dir(tiny, path)
    assert not marker.exists()
