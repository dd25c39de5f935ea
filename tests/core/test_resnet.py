"""Tests of handmocap.core.backbones.resnet: torchvision key layout, shapes, gradients, BN modes."""

from __future__ import annotations

import io
import math

import pytest
import torch

from handmocap.core.backbones.resnet import ResNet, ResNetDeconvBackbone, resnet50

TINY_LAYERS = (1, 1, 1, 1)
TINY_WIDTHS = (8, 16, 32, 64)


def tiny_resnet(**kwargs: object) -> ResNet:
    return ResNet(TINY_LAYERS, TINY_WIDTHS, **kwargs)


def tiny_deconv() -> ResNetDeconvBackbone:
    return ResNetDeconvBackbone(TINY_LAYERS, TINY_WIDTHS, (16, 16, 16), out_channels=32)


def torchvision_resnet50_keys() -> dict[str, tuple[int, ...]]:
    """torchvision ``resnet50().state_dict()`` names -> shapes, written from the architecture
    (v1.5 bottlenecks [3, 4, 6, 3], widths 64..512, expansion 4), not from our module."""
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{name}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    keys["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    c_in = 64
    for stage, (blocks, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for i in range(blocks):
            p = f"layer{stage + 1}.{i}"
            keys[f"{p}.conv1.weight"] = (w, c_in, 1, 1)
            bn(f"{p}.bn1", w)
            keys[f"{p}.conv2.weight"] = (w, w, 3, 3)
            bn(f"{p}.bn2", w)
            keys[f"{p}.conv3.weight"] = (4 * w, w, 1, 1)
            bn(f"{p}.bn3", 4 * w)
            if i == 0:
                keys[f"{p}.downsample.0.weight"] = (4 * w, c_in, 1, 1)
                bn(f"{p}.downsample.1", 4 * w)
            c_in = 4 * w
    keys["fc.weight"] = (1000, 2048)
    keys["fc.bias"] = (1000,)
    return keys


def fake_checkpoint(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A checkpoint as torchvision would save it: float tensors, int64 BN counters."""
    return {
        k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float)
        for k, s in keys.items()
    }


@pytest.fixture(scope="module")
def full() -> ResNet:
    return resnet50()


# --- key layout ------------------------------------------------------------------------------


def test_expected_key_list_matches_known_facts():
    keys = torchvision_resnet50_keys()
    params = {k: s for k, s in keys.items() if not k.split(".")[-1].startswith(("running", "num"))}
    assert len(keys) == 320
    assert sum(math.prod(s) for s in params.values()) == 25_557_032
    assert keys["fc.weight"] == (1000, 2048)
    assert keys["layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert keys["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert keys["layer3.0.conv2.weight"] == (256, 256, 3, 3)
    assert "layer1.1.downsample.0.weight" not in keys


def test_resnet50_state_dict_equals_torchvision_layout(full):
    got = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert got == torchvision_resnet50_keys()
    assert list(got) == list(torchvision_resnet50_keys())  # same order, too
    assert sum(p.numel() for p in full.parameters()) == 25_557_032


def test_torchvision_shaped_checkpoint_loads_strictly():
    model = resnet50()
    model.load_state_dict(fake_checkpoint(torchvision_resnet50_keys()), strict=True)
    assert not model.fc.weight.any() and not model.layer4[2].bn3.running_var.any()


def test_without_top_has_no_fc_keys():
    model = resnet50(include_top=False)
    keys = model.state_dict().keys()
    assert not any(k.startswith("fc.") for k in keys)
    assert set(keys) == {k for k in torchvision_resnet50_keys() if not k.startswith("fc.")}
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 - 2048 * 1000 - 1000


def test_state_dict_round_trip_and_strict_failures():
    torch.manual_seed(0)
    model = tiny_resnet(num_classes=5)
    model.train()
    model(torch.randn(2, 3, 64, 64))  # moves running stats off their defaults
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    other = tiny_resnet(num_classes=5)
    other.load_state_dict(state, strict=True)
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), k

    missing = dict(state)
    del missing["layer3.0.bn2.running_mean"]
    with pytest.raises(RuntimeError, match="Missing key"):
        tiny_resnet(num_classes=5).load_state_dict(missing, strict=True)
    extra = dict(state, **{"layer1.0.conv4.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Unexpected key"):
        tiny_resnet(num_classes=5).load_state_dict(extra, strict=True)


def test_deconv_backbone_loads_torchvision_trunk():
    model = ResNetDeconvBackbone()
    model.load_trunk_state_dict(fake_checkpoint(torchvision_resnet50_keys()))
    assert not model.trunk.conv1.weight.any()
    assert model.backbone_channels == 32


# --- forward shapes --------------------------------------------------------------------------


def test_resnet50_shapes_at_224(full):
    full.eval()
    with torch.no_grad():
        features = full.forward_features(torch.randn(1, 3, 224, 224))
        logits = full.forward_head(features[-1])
    assert [tuple(f.shape) for f in features] == [
        (1, 256, 56, 56),
        (1, 512, 28, 28),
        (1, 1024, 14, 14),
        (1, 2048, 7, 7),
    ]
    assert logits.shape == (1, 1000)


def test_forward_is_features_then_head():
    model = tiny_resnet(num_classes=7).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits = model(x)
        assert torch.equal(logits, model.forward_head(model.forward_features(x)[-1]))
    assert logits.shape == (2, 7)
    trunk = tiny_resnet(include_top=False).eval()
    assert trunk(x).shape == (2, 256, 2, 3)
    with pytest.raises(RuntimeError, match="include_top"):
        trunk.forward_head(trunk(x))


def test_deconv_backbone_shape():
    out = tiny_deconv()(torch.randn(2, 3, 128, 128))
    assert out.shape == (2, 32, 32, 32)


# --- gradients, memory format, BN modes ------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: tiny_resnet(num_classes=4), tiny_deconv], ids=["resnet", "deconv"]
)
def test_tiny_forward_backward(make):
    torch.manual_seed(0)
    model = make().train()
    out = model(torch.randn(2, 3, 64, 64))
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_zero_init_residual():
    model = tiny_resnet(zero_init_residual=True)
    assert all(not b[0].bn3.weight.any() for b in (model.layer1, model.layer4))
    assert tiny_resnet().layer1[0].bn3.weight.eq(1).all()


@pytest.mark.parametrize(
    "make", [lambda: tiny_resnet(num_classes=4), tiny_deconv], ids=["resnet", "deconv"]
)
def test_channels_last_matches_contiguous(make):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_eval_uses_running_stats():
    torch.manual_seed(0)
    model = tiny_deconv().train()
    for _ in range(3):
        model(torch.randn(4, 3, 64, 64))  # running stats away from (0, 1)
    x = torch.randn(4, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        alone = model(x[:1])
        in_batch = model(x)[:1]
        with_others = model(torch.cat([x[:1], 5 * torch.randn(3, 3, 64, 64)]))[:1]
    torch.testing.assert_close(in_batch, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_others, alone, atol=1e-5, rtol=1e-5)
    model.train()
    with torch.no_grad():  # contrast: training mode normalises with the batch's own statistics
        assert not torch.allclose(model(x)[:1], model(x[:2])[:1], atol=1e-4)
