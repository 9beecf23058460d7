"""The one sampler of every loader: a rank's shard of the indices, fresh per epoch or fixed."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def distributed_rank_world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardedSampler(Sampler[int]):
    """Rank r of w takes items r, r+w, ... of ``length``: each item is used exactly once under
    DDP (the default DistributedSampler pads shards with duplicates); no shuffling is needed.

    ``fresh_each_epoch`` (training): yields ``epoch * length + i``, and every index seeds an
    independent random mixture, so each epoch draws fresh ones, reproducibly (Lightning calls
    ``set_epoch``, also on resume). Otherwise (the fixed grids) every epoch yields ``0..length-1``.
    """

    def __init__(self, length: int, fresh_each_epoch: bool = False) -> None:
        self.length, self.fresh_each_epoch, self.epoch = length, fresh_each_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rank, world = distributed_rank_world()
        start = self.epoch * self.length if self.fresh_each_epoch else 0
        return iter(range(start + rank, start + self.length, world))

    def __len__(self) -> int:
        rank, world = distributed_rank_world()
        return len(range(rank, self.length, world))
