"""Weights that are a pure function of each tensor's (official) name, for parity checks.

Both the official network and the port are filled with the same numbers by name, so their
outputs can be compared without shipping 120 MB of weights. Scales keep activations of a deep
random network in a sane range: convolution and linear weights ~ N(0, 1/fan_in), BatchNorm
close to identity.
"""

from __future__ import annotations

import zlib

import torch

# Extra bias on the centre heads' last conv, so that random maps still find hands.
CENTER_BIAS = {"l_final_layers.2.2.bias": 0.3, "r_final_layers.2.2.bias": 0.3}
# Larger segmentation logits, so that the part attention is peaked rather than uniform.
WEIGHT_SCALE = {"backbone.hand_segm.segm_head.segm_net.double_conv.3.weight": 40.0}
# DIR's graph convolutions (SemGCN ``PGraphConv.W``, shape (2, joints, in, out)) multiply each
# joint's features by a per-joint (in, out) matrix: the true fan-in is ``in`` (shape[-2]), not
# the product of the trailing dims. No ACR key ends like this.
GRAPH_WEIGHT_SUFFIX = "gconv.W"


def value_for(name: str, like: torch.Tensor) -> torch.Tensor:
    """Deterministic tensor for the official key ``name`` shaped like ``like``."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    shape = like.shape
    if name.endswith("num_batches_tracked"):
        return torch.zeros_like(like)
    noise = torch.randn(shape, generator=g, dtype=torch.float64)
    if name.endswith("running_var"):
        out = 0.8 + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)
    elif name.endswith("running_mean"):
        out = 0.05 * noise
    elif like.dim() == 1 and name.endswith("weight"):  # BatchNorm scale
        out = 0.5 + 0.05 * noise
    elif like.dim() == 1:  # biases
        out = 0.02 * noise + CENTER_BIAS.get(name, 0.0)
    else:
        if like.dim() == 6:  # ACR's part pose layer
            fan_in = shape[2]
        elif name.endswith(GRAPH_WEIGHT_SUFFIX):
            fan_in = shape[-2]
        else:
            fan_in = like[0].numel()
        out = noise / fan_in**0.5 * WEIGHT_SCALE.get(name, 1.0)
    return out.to(like.dtype)


def fill(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """A state dict with every tensor replaced by its deterministic value (keys unchanged).

    ``prefix`` is stripped from the key before it names the value (e.g. "module.").
    """
    return {k: value_for(k.removeprefix(prefix), v) for k, v in state.items()}
