"""What both networks' losses share: masked means that stay exact under data parallelism."""

from __future__ import annotations

import torch
import torch.distributed as dist


def global_total(total: torch.Tensor) -> torch.Tensor:
    """A count or weight total over the whole global batch, in units of one process's share.

    Under DDP each process computes its loss on its part of the batch and the gradients are
    averaged over the processes. A mean normalised by the local count would weigh every part
    equally however many labels it holds; normalising by (global count / processes) instead makes
    the averaged gradient exactly that of the mean over the global batch. One process: unchanged.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        total = total.detach().clone()
        dist.all_reduce(total)
        total = total / dist.get_world_size()
    return total


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(w * v) / sum(w)`` with ``weights`` broadcast to ``values``; 0 (with a gradient)
    where every weight is 0. Entries of weight 0 never reach the result, not even as NaN."""
    weights = weights.to(values.dtype).expand_as(values)
    values = torch.where(weights > 0, values, torch.zeros_like(values))
    total = global_total(weights.sum())
    return (values * weights).sum() / torch.where(total > 0, total, torch.ones_like(total))
