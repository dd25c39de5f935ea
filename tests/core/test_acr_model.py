"""The ACR network: map names and shapes, gradients, and the same numbers in every way of running.

Almost everything runs on ``ACRConfig.tiny()`` (same structure, narrow layers). Shapes of the
full-size official network are checked on the meta device, which computes no numbers.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from handmocap.core.acr.heads import coord_maps
from handmocap.core.acr.model import ACR, ACRConfig

DATA = Path(__file__).resolve().parents[1] / "data"
BACKBONES = ["hrnet", "resnet"]
HAND_MAPS = {"center": 1, "prior": 106, "params_global": 109, "params": 109}
MAP_NAMES = {"segm_logits"} | {f"{s}_{m}" for s in ("left", "right") for m in HAND_MAPS}
PARAM_MAPS = ["left_params", "right_params", "left_params_global", "right_params_global"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(backbone: str = "hrnet", seed: int = 0, calibrate: bool = True) -> ACR:
    """A tiny model, by default with the BatchNorm statistics of a random batch.

    With fresh statistics (mean 0, variance 1) the untrained tiny ResNet's eval-mode output
    hardly depends on its input, which would make comparisons between images meaningless.
    """
    torch.manual_seed(seed)
    model = ACR.from_config(ACRConfig.tiny(backbone))
    if not calibrate:
        return model
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.momentum = 1.0  # running statistics := this batch's
    with torch.no_grad():
        model.train()(images(4, seed=99))
    for norm in norms:
        norm.momentum = 0.1
    return model


def images(batch: int, height: int = 128, width: int | None = None, seed: int = 1) -> torch.Tensor:
    """Network input in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width or height, generator=generator) * 2 - 1


def expected_shapes(batch: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Features at 1/4 of the input, segmentation at twice that, hand maps at half of it."""
    fh, fw = height // 4, width // 4
    shapes = {"segm_logits": (batch, 33, 2 * fh, 2 * fw)}
    for side in ("left", "right"):
        for name, channels in HAND_MAPS.items():
            shapes[f"{side}_{name}"] = (batch, channels, fh // 2, fw // 2)
    return shapes


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("backbone", BACKBONES)
def test_maps_names_shapes_finite(backbone):
    model = tiny(backbone).eval()
    with torch.no_grad():
        maps = model(images(2))
    assert set(maps) == MAP_NAMES
    assert {k: tuple(v.shape) for k, v in maps.items()} == expected_shapes(2, 128, 128)
    for name, value in maps.items():
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("size", [(192, 192), (128, 192), (192, 128)])
def test_map_sizes_follow_the_input(backbone, size):
    model = tiny(backbone).eval()
    with torch.no_grad():
        maps = model(images(1, *size))
    assert {k: tuple(v.shape) for k, v in maps.items()} == expected_shapes(1, *size)


def test_full_size_shapes_at_512():
    """The official network's documented shapes (computed on the meta device: no numbers)."""
    with torch.device("meta"):
        model = ACR.from_config(ACRConfig()).eval()
        maps = model(torch.empty(1, 3, 512, 512))
    assert {k: tuple(v.shape) for k, v in maps.items()} == expected_shapes(1, 512, 512)
    assert maps["segm_logits"].shape[-1] == 256 and maps["left_params"].shape[-1] == 64


def test_coordinate_maps():
    coords = coord_maps(3, 5)
    assert coords.shape == (1, 2, 3, 5)
    # x (channel 0) runs along the width, y (channel 1) along the height, both from -1 to 1
    torch.testing.assert_close(coords[0, 0, 0], torch.linspace(-1, 1, 5))
    torch.testing.assert_close(coords[0, 1, :, 0], torch.linspace(-1, 1, 3))
    assert torch.all(coords[0, 0] == coords[0, 0, :1]) and torch.all(
        coords[0, 1] == coords[0, 1, :, :1]
    )


def pre_batchnorm_biases(model: nn.Module) -> set[str]:
    """Biases of convolutions whose output goes straight into a BatchNorm (in a Sequential)."""
    names = set()
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, layer), (_, following) in zip(children, children[1:], strict=False):
            if isinstance(layer, nn.Conv2d) and layer.bias is not None:
                if isinstance(following, nn.BatchNorm2d):
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def backward_of_every_output(model: ACR, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Backward of a random linear function of every output map; the gradients by name."""
    maps = model(x)
    generator = torch.Generator().manual_seed(2)
    loss = sum((v * torch.randn(v.shape, generator=generator)).mean() for v in maps.values())
    loss.backward()
    grads = {}
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
        grads[name] = parameter.grad.abs().max()
    return grads


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_parameter_learns_in_train_mode(backbone):
    """Gradients flow everywhere (so no ``no_grad`` / ``detach`` inside the forward).

    The one exception is structural: a convolution bias that feeds a train-mode BatchNorm is
    removed again by the batch mean, so its gradient is zero up to rounding. The official
    network has these biases (they are in its checkpoint), so the port keeps them.
    """
    model = tiny(backbone).train()
    grads = backward_of_every_output(model, images(2))
    biases = pre_batchnorm_biases(model)
    assert len(biases) >= 12  # the heads' first convolutions, segmentation, part features
    assert biases <= set(grads)
    vanishing = {name for name, g in grads.items() if g < 1e-6}
    assert vanishing == biases
    for name, g in grads.items():
        if name not in biases:
            assert g > 1e-6, name


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_parameter_learns_with_frozen_batchnorm(backbone):
    """In eval mode (BatchNorm on running statistics) the pre-BatchNorm biases learn too."""
    model = tiny(backbone).eval()
    grads = backward_of_every_output(model, images(2))
    assert all(g > 0 for g in grads.values()), [n for n, g in grads.items() if g == 0]
    assert all(grads[name] > 1e-6 for name in pre_batchnorm_biases(model))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_camera_scale_is_positive(backbone):
    """Channel 0 of the global camera is 1.1 ** raw: positive however negative the raw value."""
    model = tiny(backbone).eval()
    x = images(2)
    with torch.no_grad():
        model.left.camera[-1].bias[0] = -40.0  # push the raw scale far below zero
        model.right.camera[-1].bias[0] = 30.0
        maps = model(x)
        features = model.backbone(x)
        b, _, h, w = features.shape
        inputs = torch.cat([features, coord_maps(h, w).expand(b, -1, -1, -1)], 1)
        for side, heads in (("left", model.left), ("right", model.right)):
            raw = heads.camera(inputs)
            params = maps[f"{side}_params_global"]
            assert torch.all(params[:, 0] > 0)
            torch.testing.assert_close(params[:, 0], torch.pow(1.1, raw[:, 0]))
            torch.testing.assert_close(params[:, 1:3], raw[:, 1:3])
            torch.testing.assert_close(params[:, 3:], heads.params(inputs))
    assert float(maps["left_params_global"][:, 0].max()) < 1.1**-30
    assert float(maps["right_params_global"][:, 0].min()) > 1.1**20


@pytest.mark.parametrize("backbone", BACKBONES)
def test_images_of_a_batch_are_independent_in_eval(backbone):
    model = tiny(backbone).eval()
    x = images(3)
    with torch.no_grad():
        alone = model(x[:1])
        together = model(x)
    # 1e-5 of each map's largest value (maps reach about 4 here; the convolution kernels
    # chosen for a batch of 1 and of 3 round differently)
    for name, value in together.items():
        scale = float(value.abs().max())
        torch.testing.assert_close(alone[name], value[:1], atol=1e-5 * scale, rtol=0)
    # and the batch really differs per image (the comparison is not trivially true)
    assert float((together["left_params"][0] - together["left_params"][1]).abs().max()) > 1e-4


@pytest.mark.parametrize("backbone", BACKBONES)
def test_channels_last_gives_the_same_maps(backbone):
    model = tiny(backbone).eval()
    x = images(2)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        maps = model(x.contiguous(memory_format=torch.channels_last))
    assert max_difference(maps, reference) < 1e-4


def test_bf16_autocast_on_cpu_stays_close():
    """bf16 autocast runs; the parameter maps stay within 5% (relative norm) of fp32.

    Observed with fresh BatchNorm statistics: 0.2-0.4% on the parameter maps, under 1% on
    every map. (With statistics calibrated on a batch, so that every BatchNorm renormalises
    the untrained network's signal, rounding accumulates through the layers: 3-4% on the fused
    parameter maps, 8-10% on the global ones and on the centre maps.) A small input because
    CPUs without native bf16 take a slow convolution path (seconds at 128x128).
    """
    model = tiny(calibrate=False).eval()
    x = images(1, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            maps = model(x)
    assert set(maps) == set(reference)
    assert maps["left_params"].dtype == torch.bfloat16  # autocast really was in effect
    for name, value in maps.items():
        assert torch.isfinite(value.float()).all(), name
    for name in PARAM_MAPS:
        assert relative_error(maps[name], reference[name]) < 5e-2, name
    for name in ("left_center", "right_center", "left_prior", "right_prior", "segm_logits"):
        assert relative_error(maps[name], reference[name]) < 1e-1, name


def test_torch_compile_matches_eager():
    """torch.compile runs the model and matches eager.

    backend="aot_eager": with the default inductor backend, compiling the tiny model took about
    75 s on 2 CPU cores with a cold cache (about 10 s warm); aot_eager still traces the whole
    forward through dynamo and AOT autograd, in about 8 s here.
    """
    model = tiny().eval()
    x = images(2)
    with torch.no_grad():
        reference = model(x)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        start = time.perf_counter()
        with torch.no_grad():
            maps = compiled(x)
        elapsed = time.perf_counter() - start
    finally:
        torch._dynamo.reset()
    assert max_difference(maps, reference) < 1e-4
    assert elapsed < 120


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("train", [False, True])
def test_no_tensor_leaves_the_input_device(backbone, train):
    """On the meta device every output stays on meta: nothing is created on another device."""
    with torch.device("meta"):
        model = ACR.from_config(ACRConfig.tiny(backbone)).train(train)
    maps = model(torch.empty(2, 3, 128, 128, device="meta"))
    assert all(v.device.type == "meta" for v in maps.values())
    if train:
        sum(v.sum() for v in maps.values()).backward()
        assert all(p.grad is not None and p.grad.device.type == "meta" for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backbone", BACKBONES)
def test_cuda_matches_cpu(backbone):
    model = tiny(backbone).eval()
    x = images(2)
    with torch.no_grad():
        reference = model(x)
        model = model.to("cuda")
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            allow = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                maps = model(x.to("cuda"))
            finally:
                torch.backends.cuda.matmul.allow_tf32 = allow
    assert all(v.device.type == "cuda" for v in maps.values())
    assert max_difference({k: v.cpu() for k, v in maps.items()}, reference) < 1e-4


def test_full_size_parameter_count_matches_the_official_keys():
    """Every official tensor but the unused ``segmentation_layers`` is in the port, same size."""
    official = json.loads((DATA / "acr_official_keys.json").read_text())
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    kept = {k: v for k, v in official.items() if not k.startswith("module.segmentation_layers.")}
    assert len(kept) < len(official)
    with torch.device("meta"):
        model = ACR.from_config(ACRConfig())
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == sum(math.prod(v) for k, v in kept.items() if not k.endswith(buffers))
    assert parameters == 30_161_535
    state_numel = sum(v.numel() for v in model.state_dict().values())
    assert state_numel == sum(math.prod(v) for v in kept.values())
