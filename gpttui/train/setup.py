"""What a run trains on: device, precision, compile decision, micro-batch size, LR schedule.

Pure decisions (no training): the Trainer asks these functions once at start and reports
their answers as log messages, so a user sees why a run uses bf16, eager mode or
batch_size 24 without reading code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gpttui.config import TrainConfig
from gpttui.errors import ConfigError
from gpttui.plan.estimate import AUTO_CPU_BATCH, AUTO_MAX_BATCH, AUTO_MEMORY_FRACTION

# batch_size = "auto": the tokens per optimizer step are kept at what this reference
# micro-batch would give with the config's gradient_accumulation_steps (16 is the
# micro-batch the seeds' runs use: 16 x 1024 x 32 = 524,288 tokens/iter).
AUTO_REFERENCE_BATCH = 16
# AUTO_CPU_BATCH (CPU: no memory probe; RAM is rarely the limit for models a CPU can train),
# AUTO_MAX_BATCH and AUTO_MEMORY_FRACTION (headroom for fragmentation and eval) live in
# gpttui.plan.estimate, which predicts the same pick.


@dataclass(frozen=True)
class Env:
    """Where and how the run computes."""

    device: str  # "cpu", "cuda:0", "mps"
    device_type: str  # "cpu", "cuda", "mps"
    dtype: str  # "float32", "bfloat16", "float16"
    use_scaler: bool  # fp16 needs loss scaling
    compile: bool
    device_name: str  # for the peak table: "cpu" or torch's CUDA name

    @property
    def ptdtype(self) -> torch.dtype:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes (a no-op in fp32)."""
        if self.dtype == "float32" or self.device_type == "mps":
            return contextlib.nullcontext()
        return torch.amp.autocast(device_type=self.device_type, dtype=self.ptdtype)


def resolve_env(cfg: TrainConfig, local_rank: int = 0, distributed: bool = False) -> Env:
    """Device, dtype and compile choice for `cfg` on this machine."""
    dev = cfg.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device = {cfg.device!r} but no CUDA GPU is visible to torch",
                              "set device = \"cpu\", or install a CUDA build of torch", key="device")
        if distributed or dev == "cuda":
            dev = f"cuda:{local_rank if distributed else torch.cuda.current_device()}"
    if dev == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device = 'mps' but MPS is not available", "set device = \"cpu\"", key="device")
    kind = dev.split(":")[0]
    dtype = cfg.dtype
    if dtype == "auto":
        if kind == "cuda":
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if dtype == "float16" and kind != "cuda":
        raise ConfigError(f"dtype = 'float16' needs a CUDA GPU (device is {dev})", "use float32 or bfloat16 on CPU", key="dtype")
    compile_ = cfg.compile if isinstance(cfg.compile, bool) else kind == "cuda"
    name = torch.cuda.get_device_name(dev) if kind == "cuda" else kind
    return Env(dev, kind, dtype, dtype == "float16", bool(compile_), name)


def enable_tf32() -> None:
    """TF32 matmuls and convolutions (Ampere+): ~free speed for fp32 parts of the step."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def get_lr(cfg: TrainConfig, it: int) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay to min_lr, then min_lr."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if it > cfg.lr_decay_iters:
        return cfg.min_lr
    span = max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * (it - cfg.warmup_iters) / span))
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)


def flops_per_token(model: Any, cfg: TrainConfig) -> int:
    """Training FLOPs per token as nanoGPT's estimate_mfu counts them: 6N + 12·L·d·T."""
    n = model.get_num_params()
    return 6 * n + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size


def accumulation_for(micro_batch: int, cfg: TrainConfig, world_size: int) -> int:
    """Accumulation that keeps tokens/iter near AUTO_REFERENCE_BATCH x accumulation, as a
    multiple of the number of processes."""
    target = AUTO_REFERENCE_BATCH * cfg.gradient_accumulation_steps
    accum = max(1, round(target / micro_batch))
    return max(world_size, round(accum / world_size) * world_size)


def find_micro_batch(
    try_batch: Callable[[int], None], env: Env, block_size: int, log: Callable[[str], None]
) -> int:
    """The largest power-of-two micro-batch whose real forward/backward/step fits in
    AUTO_MEMORY_FRACTION of the GPU (CPU: AUTO_CPU_BATCH, without probing)."""
    if env.device_type != "cuda":
        log(f"batch_size auto: {AUTO_CPU_BATCH} on {env.device_type} (memory is only probed on CUDA)")
        return AUTO_CPU_BATCH
    total = torch.cuda.get_device_properties(env.device).total_memory
    b = AUTO_MAX_BATCH
    while b >= 1:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(env.device)
        try:
            try_batch(b)
            peak = torch.cuda.max_memory_reserved(env.device)
            if peak <= AUTO_MEMORY_FRACTION * total:
                log(f"batch_size auto: {b} sequences x {block_size} tokens fit "
                    f"({peak / 2**30:.1f} of {total / 2**30:.1f} GiB at peak)")
                return b
        except torch.OutOfMemoryError:
            pass
        b //= 2
    raise ConfigError("batch_size auto: not even 1 sequence fits in GPU memory",
                      "lower block_size, n_layer or n_embd", key="batch_size")
