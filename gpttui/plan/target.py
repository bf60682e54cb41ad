"""The device an estimate is for: the one resolution `--estimate` and the TUI share.

`--gpu`, else the config's `gpu` (an unknown name is a ConfigError, with close matches),
else the CPU when the config says `device = "cpu"`, else the detected device. A table card
takes its peak from the table; a CPU, Apple GPU or unlisted card from a measured matmul,
which the caller supplies (`measured`): the CLI measures at once, the TUI passes what its
worker has measured so far (`MEASURING` until then). Torch-free at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gpttui.config import TrainConfig
from gpttui.errors import ConfigError
from gpttui.plan import hardware as H

MEASURING = "measuring a matmul peak…"
PeakKey = tuple[str, str]  # (torch device: "cpu" | "mps" | "cuda:N", dtype)
Measured = Callable[[PeakKey], tuple[float | None, str]]  # -> (TFLOPS or None, basis)

SOURCES = {"--gpu": "named with --gpu", "config gpu": "the config's gpu",
           "config device": "the config's device = 'cpu'", "detected": "detected (NVML, else the CPU)"}


@dataclass(frozen=True)
class Target:
    """The device an estimate is for, with where each of its figures came from."""

    kind: str
    name: str
    spec: H.GPUSpec | None
    peak_tflops: float | None
    peak_basis: str
    memory_bytes: int | None
    power_w: float | None
    source: str  # "--gpu", "config gpu", "config device", "detected"


def measure_now(key: PeakKey) -> tuple[float | None, str]:
    """The CLI's `measured`: a matmul measured now (imports torch; seconds, a CPU's kept)."""
    return H.measured_peak(*key)


def peak_key(cfg: TrainConfig, device: Any) -> PeakKey | None:
    """The (device, dtype) whose measured matmul rate stands in for `cfg`'s peak, or None
    when a table peak applies (the config names a GPU, or the detected card is listed)."""
    if cfg.gpu or device is None:
        return None
    if cfg.device == "cpu" or device.kind == "cpu":
        return "cpu", cfg.dtype if cfg.dtype != "auto" else H.default_dtype(None, "cpu")
    if device.spec is not None or device.peak_tflops:
        return None
    torch_dev = "mps" if device.kind == "mps" else f"cuda:{device.index}"
    return torch_dev, cfg.dtype if cfg.dtype != "auto" else H.default_dtype(None, device.kind)


def resolve_target(cfg: TrainConfig, device: Any = None, *, gpu_arg: str | None = None,
                   measured: Measured = measure_now) -> Target:
    """Where `cfg` is estimated (see the module docstring). `device` is the detected
    `DeviceInfo` (detected here when None); ConfigError for an unknown GPU name."""
    if gpu_arg:
        return _named_gpu(gpu_arg, "--gpu")
    if cfg.gpu:
        return _named_gpu(cfg.gpu, "config gpu")
    info = device if device is not None else H.detect_device()
    key = peak_key(cfg, info)
    if cfg.device == "cpu" or info.kind == "cpu":
        peak, basis = measured(key)  # type: ignore[arg-type] - a CPU always has a key
        on_cpu = info.kind == "cpu"
        return Target("cpu", info.name if on_cpu else "CPU", None, peak, basis,
                      info.memory_bytes if on_cpu else H.total_ram(), None,
                      "config device" if cfg.device == "cpu" else "detected")
    if info.spec is not None:  # a known card: NVML's memory and power limit beat the table
        return Target(info.kind, info.name, info.spec, None, "", info.memory_bytes, info.board_power_w, "detected")
    peak, basis = (info.peak_tflops, info.peak_basis) if key is None else measured(key)
    return Target(info.kind, info.name, None, peak, basis, info.memory_bytes, info.board_power_w, "detected")


def _named_gpu(name: str, source: str) -> Target:
    spec = H.lookup_gpu(name)
    if spec is None:
        close = H.close_matches(name)
        hint = f"close matches: {', '.join(close)}" if close else "e.g. --gpu 'RTX 4070', 'A100', 'H100'"
        where = "--gpu" if source == "--gpu" else "config 'gpu'"
        raise ConfigError(f"{where}: unknown GPU {name!r}", hint, key=None if source == "--gpu" else "gpu")
    return Target("cuda", spec.name, spec, None, "", None, None, source)


def estimate_for(cfg: TrainConfig, target: Target, runs: list[Any] | None = None) -> Any:
    """`cfg`'s estimate on `target` with the dataset's size and, when a past run of the
    same shape measured it there, its throughput; the device figure says where it came
    from. `runs`: the run summaries, when the caller has listed them already."""
    from gpttui.plan import estimate as E

    tps, run_id = measured_tokens_per_s(cfg, target, runs)
    est = E.estimate(
        cfg, target.spec, measured_tokens_per_s=tps, dataset_tokens=dataset_tokens(cfg),
        device_kind=target.kind, device_name=target.name, peak_tflops=target.peak_tflops,
        peak_basis=target.peak_basis, memory_bytes_available=target.memory_bytes,
        power_w=target.power_w,
    )
    if tps:
        est = replace(est, tokens_per_s=E.Figure(tps, "tokens/s", f"measured in run {run_id}"))
    return replace(est, device=E.Figure(target.name, "", SOURCES.get(target.source, target.source)))


# Every TrainConfig key is in exactly one of these two (a test holds it, so a new key must be
# classified). SPEED_KEYS change the work or the memory of a training step, hence tokens/s: a
# past run is "measured" for this config only when all of them are equal.
SPEED_KEYS = (
    "n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "dropout",  # the model
    "recipe", "logit_softcap", "chunked_loss", "tie_head",  # which model, head and loss path run
    "batch_size", "gradient_accumulation_steps",  # micro-batch; optimizer work per token
    "grad_clip",  # 0 skips the gradient-norm pass
    "dtype", "compile", "n_gpus",
    "log_interval",  # each logged step waits for the device
    "eval_only",  # no training step at all
)
# Values that leave a step's work unchanged (learning rates, decay, momentum: same arithmetic
# whatever the number), what happens outside the timed windows (eval, checkpoints, samples:
# taken off the window clock), the data's name and size, and the device keys, which the match
# checks through the target itself (`_same_device`).
SPEED_NEUTRAL = (
    "description", "dataset", "data_source", "text_column", "val_fraction", "dataset_tokens",
    "learning_rate", "weight_decay", "beta1", "beta2", "muon_lr", "muon_momentum", "muon_weight_decay",
    "embed_lr", "max_iters", "decay_lr", "warmup_iters", "lr_decay_iters", "min_lr", "warmdown_frac",
    "eval_interval", "eval_iters", "eval_fixed", "always_save_checkpoint", "checkpoint_interval_s",
    "tensorboard_log", "sample_tokens", "sample_prompt", "early_stop_patience", "early_stop_min_delta",
    "early_stop_reference", "hellaswag_every", "hellaswag_examples",  # (the loop's HellaSwag is off the window clock)
    "device", "seed", "gpu", "assumed_mfu", "electricity_price", "currency",
    "out_dir", "init_from", "backend", "wandb_log", "wandb_project", "wandb_run_name",
)


def _same_device(past: dict, target: Target) -> bool:
    """Whether a past run's device (status.json) is the one this estimate is for."""
    name = str(past.get("device") or "")
    if not name or int(past.get("world_size", 1) or 1) != 1:
        return False
    if past.get("device_type") == "cpu" or target.kind == "cpu":
        return past.get("device_type") == "cpu" and target.kind == "cpu"
    spec = H.lookup_gpu(name)
    return spec is not None and target.spec is not None and spec.name == target.spec.name


def measured_tokens_per_s(cfg: TrainConfig, target: Target, summaries: list[Any] | None = None) -> tuple[float | None, str]:
    """Throughput of the latest past run equal in every SPEED_KEYS key, on the same
    device (one process), if any: the median of its recent log windows. `summaries` is
    `runs.list_runs()` when the caller already has it (one scan for many estimates)."""
    try:
        from gpttui.runs import store as runs
    except ImportError:
        return None, ""
    try:
        listed = runs.list_runs() if summaries is None else summaries
        for summary in sorted(listed, key=lambda s: s.updated or "", reverse=True):
            if not summary.tokens_per_s:
                continue
            run = runs.get_run(summary.id)
            past = run.config()
            if all(getattr(past, k) == getattr(cfg, k) for k in SPEED_KEYS) and _same_device(run.status(), target):
                return float(summary.tokens_per_s), summary.id
    except Exception:  # a damaged run folder must not break an estimate
        return None, ""
    return None, ""


def dataset_tokens(cfg: TrainConfig) -> int | None:
    """Train tokens: `dataset_tokens` from the config, else the prepared dataset's meta.json."""
    if cfg.dataset_tokens:
        return cfg.dataset_tokens
    from gpttui.data.store import train_tokens

    return train_tokens(cfg.dataset)
