"""Refusing, before anything is allocated, a run that cannot fit in memory.

`--set n_layer=100000` is estimated far beyond any device ("likely OOM"), yet a run used
to start building it: minutes of allocation and gigabytes of swap before it failed, if it
failed at all. `check_fits(cfg)` compares the estimate's peak (`estimate.memory_bytes`,
the same figure `--estimate` shows) with the memory of the device the run would use (the
GPU's, by NVML; the host's RAM on a CPU or Apple GPU) and raises a one-line ConfigError when
the peak exceeds it by more than `MARGIN`. The estimate is a model, so a run just over the
line is let through (the "likely OOM" warning still shows); `--no-memory-check` lets any
run try. Never imports torch.
"""

from __future__ import annotations

import os
from typing import Any

from gpttui.errors import ConfigError

MARGIN = 1.25  # refuse above 125 % of the device: beyond the estimate's error, not a guess that might fit


def device_memory(cfg: Any, device: Any = None) -> tuple[int | None, str, bool]:
    """(bytes, what they are, on CUDA) for the device `cfg` would train on."""
    from gpttui.plan import hardware as H

    if cfg.device == "cpu":
        return H.total_ram(), "this machine's RAM", False
    index = int(cfg.device[5:]) if cfg.device.startswith("cuda:") else int(os.environ.get("LOCAL_RANK", "0") or 0)
    info = device if device is not None else H.detect_device(index)
    if info.kind == "cuda":
        return info.memory_bytes, f"the GPU's memory ({info.name})", True
    return H.total_ram(), "this machine's RAM", False


def needed_bytes(cfg: Any, cuda: bool, avail: int | None) -> tuple[int, int]:
    """(estimated peak bytes, micro-batch) as `--estimate` computes them for this device."""
    from gpttui.plan import estimate as E
    from gpttui.plan.hardware import default_dtype

    dtype = cfg.dtype if cfg.dtype != "auto" else default_dtype(None, "cuda" if cuda else "cpu")
    params = E.count_params(cfg).total
    if isinstance(cfg.batch_size, int):
        mb = cfg.batch_size
    else:
        mb = E.auto_micro_batch(cfg, params, dtype, cuda, avail)[0]
    compiled = cfg.compile is True or (cfg.compile == "auto" and cuda)
    parts = E.memory_bytes(cfg, params, mb, dtype, cuda, compiled, bool(cfg.chunked_loss), bool(cfg.eval_only))
    return parts["total"], mb


def check_fits(cfg: Any, device: Any = None) -> None:
    """ConfigError when `cfg`'s estimated peak is more than MARGIN × the device's memory."""
    avail, where, cuda = device_memory(cfg, device)
    if not avail:
        return  # unknown memory: nothing to compare with
    need, mb = needed_bytes(cfg, cuda, avail)
    if need <= MARGIN * avail:
        return
    gib = 1024 ** 3
    raise ConfigError(
        f"this run cannot fit: its estimated peak is {need / gib:,.1f} GiB (micro-batch {mb}) and "
        f"{where} is {avail / gib:,.1f} GiB",
        "make the model, batch_size or block_size smaller (`gpttui --estimate` shows the parts), "
        "or pass --no-memory-check to try anyway")
