"""What the network backends (``acr``, ``dir``) share: the network on its device, run in the
precision and memory format asked."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from handmocap.core.errors import HandmocapError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NetworkBackend:
    """Holds ``model`` in eval mode on ``device``; ``forward_network`` runs a batch under
    autocast for bf16/fp16 and in channels_last when asked (the caller wraps inference mode)."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu",
                 precision: str = "fp32", channels_last: bool = False):  # fmt: skip
        if precision not in PRECISIONS:
            raise HandmocapError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision}"
            )
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.dtype = PRECISIONS[precision]

    def forward_network(self, x: torch.Tensor):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()
        )
        with autocast:
            return self.model(x)
