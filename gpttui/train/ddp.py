"""torchrun support: who am I (rank, world size), process-group set-up and small reductions.

`torchrun --nproc_per_node=N -m gpttui --run PRESET` starts N copies of gpttui with RANK,
LOCAL_RANK and WORLD_SIZE set. Each copy builds the same Trainer; only rank 0 writes the
run folder and emits events to the run's files. As in nanoGPT, the gradient accumulation
steps are split across ranks, so tokens per optimizer step stay what the config says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gpttui.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_master(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """The torchrun environment (RANK, LOCAL_RANK, WORLD_SIZE), or a single process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("RANK / LOCAL_RANK / WORLD_SIZE are not integers", "start gpttui with torchrun") from None
    if world <= 1 or "RANK" not in os.environ:
        return DistInfo()
    return DistInfo(rank=rank, local_rank=local, world_size=world)


def init(info: DistInfo, device_type: str) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) once per process."""
    if not info.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device_type == "cuda":
        import torch

        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def split_accumulation(accum: int, world_size: int) -> int:
    """Micro-steps per rank; the accumulation must divide evenly across ranks."""
    if accum % world_size:
        raise ConfigError(
            f"gradient_accumulation_steps = {accum} does not divide by {world_size} processes",
            f"use a multiple of {world_size}, e.g. {max(world_size, round(accum / world_size) * world_size)}",
        )
    return accum // world_size
