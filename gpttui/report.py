"""`gpttui --estimate PRESET` and `gpttui presets`: rich tables or `--json`.

The estimate's device is `--gpu`, else the config's `gpu`, else the CPU when the config
says `device = "cpu"`, else what NVML detects. Table cards keep this path torch-free; a CPU
or a card outside the table gets a short measured matmul peak (imports torch).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from typing import Any

from gpttui import estimate as E
from gpttui import hardware as H
from gpttui import presets as P
from gpttui.config import TrainConfig
from gpttui.errors import ConfigError, GpttuiError


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


def _named_gpu(name: str, source: str) -> Target:
    spec = H.lookup_gpu(name)
    if spec is None:
        close = H.close_matches(name)
        hint = f"close matches: {', '.join(close)}" if close else "e.g. --gpu 'RTX 4070', 'A100', 'H100'"
        where = "--gpu" if source == "--gpu" else "config 'gpu'"
        raise ConfigError(f"{where}: unknown GPU {name!r}", hint, key=None if source == "--gpu" else "gpu")
    return Target("cuda", spec.name, spec, None, "", None, None, source)


def resolve_target(cfg: TrainConfig, gpu_arg: str | None) -> Target:
    """`--gpu`, else config `gpu`, else CPU for device='cpu', else the detected device."""
    if gpu_arg:
        return _named_gpu(gpu_arg, "--gpu")
    if cfg.gpu:
        return _named_gpu(cfg.gpu, "config gpu")
    if cfg.device == "cpu":
        peak, basis = H.peak_for("cpu", cfg.dtype)
        info = H.detect_device()
        name, ram = (info.name, info.memory_bytes) if info.kind == "cpu" else ("CPU", None)
        return Target("cpu", name, None, peak, basis, ram, None, "config device")
    info = H.detect_device()
    if info.spec is not None:  # a known card: NVML's memory and power limit beat the table
        return Target("cuda", info.spec.name, info.spec, None, "", info.memory_bytes,
                      info.board_power_w, "detected")
    peak, basis = H.peak_for("cpu" if info.kind == "cpu" else info.name, cfg.dtype)
    return Target(info.kind, info.name, None, peak, basis, info.memory_bytes,
                  info.board_power_w, "detected")


def dataset_tokens(cfg: TrainConfig) -> int | None:
    """Train tokens: `dataset_tokens` from the config, else the prepared dataset's meta.json."""
    if cfg.dataset_tokens:
        return cfg.dataset_tokens
    from gpttui.data.store import train_tokens

    return train_tokens(cfg.dataset)


_SHAPE = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "batch_size",
          "dtype", "compile", "n_gpus")


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
    """Throughput of the latest past run of the same model and batch shape on the same
    device (one process), if any: the median of its recent log windows. `summaries` is
    `runs.list_runs()` when the caller already has it (one scan for many estimates)."""
    try:
        from gpttui import runs
    except ImportError:
        return None, ""
    try:
        listed = runs.list_runs() if summaries is None else summaries
        for summary in sorted(listed, key=lambda s: s.updated or "", reverse=True):
            if not summary.tokens_per_s:
                continue
            run = runs.get_run(summary.id)
            past = run.config()
            if all(getattr(past, k) == getattr(cfg, k) for k in _SHAPE) and _same_device(run.status(), target):
                return float(summary.tokens_per_s), summary.id
    except Exception:  # a damaged run folder must not break an estimate
        return None, ""
    return None, ""


def estimate_on(cfg: TrainConfig, target: Target, train_tokens: int | None,
                summaries: list[Any] | None = None) -> E.Estimate:
    """`cfg`'s estimate on `target`, with the tokens/s a past run of the same shape measured
    there when there is one (the CLI's `--estimate` and the TUI's panels)."""
    tps, run_id = measured_tokens_per_s(cfg, target, summaries)
    est = E.estimate(
        cfg, target.spec, measured_tokens_per_s=tps, dataset_tokens=train_tokens,
        device_kind=target.kind, device_name=target.name, peak_tflops=target.peak_tflops,
        peak_basis=target.peak_basis, memory_bytes_available=target.memory_bytes,
        power_w=target.power_w,
    )
    return replace(est, tokens_per_s=E.Figure(tps, "tokens/s", f"measured in run {run_id}")) if tps else est


def build_estimate(cfg: TrainConfig, gpu_arg: str | None) -> tuple[E.Estimate, Target]:
    target = resolve_target(cfg, gpu_arg)
    est = estimate_on(cfg, target, dataset_tokens(cfg))
    return replace(est, device=E.Figure(target.name, "", _SOURCES.get(target.source, target.source))), target


_SOURCES = {"--gpu": "named with --gpu", "config gpu": "the config's gpu",
            "config device": "the config's device = 'cpu'", "detected": "detected (NVML, else the CPU)"}


# -- formatting ----------------------------------------------------------------------------

def _si(x: float, unit: str = "") -> str:
    for div, suffix in ((1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suffix}{unit}"
    return f"{x:,.0f}{(' ' + unit) if unit else ''}"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    h = s / 3600
    return f"{h:.1f} h" + (f" ({h / 24:.1f} d)" if h >= 48 else "")


def fmt(fig: E.Figure) -> str:
    """A figure's value in human units (M params, B tokens, 2.55e18 FLOPs, GiB, h, kWh)."""
    v, u = fig.value, fig.unit
    if v is None:
        return "–"
    if isinstance(v, (str, bool)):
        return str(v)
    if u == "B":
        return f"{v / H.GIB:.2f} GiB"
    if u == "params":
        return _si(v)
    if u == "tokens":
        return f"{v:,}" if v < 1e7 else _si(v)
    if u == "FLOP":
        mant, exp = f"{v:.3g}e0".split("e")[:2] if v < 1000 else f"{v:.2e}".split("e")
        return f"{mant}e{int(exp)}" if v >= 1000 else mant
    if u == "s":
        return _duration(v)
    if u == "":
        return f"{v:.1%}" if isinstance(v, float) and v <= 1 else str(v)
    if u == "seq":
        return f"{v} seq"
    if u in ("tokens/s",):
        return _si(v)
    if u == "TFLOPS":
        return f"{v:.4g} TFLOPS"
    if u in ("kWh", "W", "epochs", "tokens/param"):
        return f"{v:,.3g} {u}" if v < 1000 else f"{v:,.0f} {u}"
    return f"{v:,.2f} {u}"  # currency


SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Device", (("device", "device"), ("dtype", "dtype"), ("n_gpus", "GPUs"),
                ("peak_tflops", "peak per GPU"))),
    ("Model", (("params_nanogpt", "parameters (nanoGPT count)"), ("params_total", "parameters (total)"),
               ("params_non_embedding", "non-embedding"))),
    ("Data", (("tokens_per_iter", "tokens / iteration"), ("total_tokens", "total tokens"),
              ("dataset_tokens", "dataset (train)"), ("epochs", "epochs"),
              ("tokens_per_param", "tokens / parameter"))),
    ("Compute", (("flops_per_token_6n", "FLOPs / token (6N)"),
                 ("flops_per_token", "FLOPs / token (6N + attn)"),
                 ("total_flops_6n", "total FLOPs (6N)"), ("total_flops", "total FLOPs (6N + attn)"))),
    ("Memory per GPU", (("micro_batch", "micro-batch"), ("mem_weights", "weights"),
                        ("mem_grads", "gradients"), ("mem_optimizer", "optimizer (AdamW)"),
                        ("mem_activations", "activations"), ("mem_logits", "logits + loss"),
                        ("mem_overhead", "framework overhead"), ("mem_total", "estimated peak"),
                        ("mem_device", "device memory"), ("mem_verdict", "verdict"))),
    ("Time and energy", (("mfu", "MFU"), ("tokens_per_s", "throughput"), ("time_s", "wall-clock time"),
                         ("power_w", "power"), ("energy_kwh", "energy"), ("cost", "electricity cost"))),
)


def render_estimate(est: E.Estimate, title: str) -> Any:
    """A rich Table: one grouped section per part, value and basis on every row."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("figure", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("basis", style="dim")
    for section, rows in SECTIONS:
        table.add_row(f"[cyan]{section}[/]", "", "", end_section=False)
        for key, label in rows:
            fig = getattr(est, key)
            table.add_row(f"  {label}", fmt(fig), fig.basis)
        table.add_section()
    return table


def _console() -> Any:
    import sys

    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def cmd_estimate(args: argparse.Namespace) -> int:
    """`gpttui --estimate PRESET [--set k=v] [--gpu NAME] [--json]`."""
    preset = P.get(args.estimate)
    cfg = preset.config(getattr(args, "overrides", None) or ())
    est, target = build_estimate(cfg, getattr(args, "gpu", None))
    if getattr(args, "json", False):
        out = {"preset": preset.name, "source": preset.source, "target_source": target.source,
               **est.to_json()}
        print(json.dumps(out, indent=2, default=_json_default))
        return 0
    console = _console()
    title = (f"{preset.name} ({preset.source}) on {cfg.n_gpus} × {target.name}, "
             f"{est.dtype.value} — {preset.description or 'no description'}")
    console.print(render_estimate(est, title))
    for w in est.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def preset_rows() -> list[dict[str, Any]]:
    """One dict per preset; a broken one carries its one-line error instead of figures."""
    rows = []
    for name in P.discover():
        row: dict[str, Any] = {"name": name}
        try:
            preset = P.get(name)
            cfg = preset.config()
            row.update(source=preset.source, path=str(preset.path),
                       params=E.count_params(cfg).nanogpt, tokens_per_iter=cfg.tokens_per_iter,
                       total_tokens=cfg.total_tokens, description=preset.description, error=None)
        except GpttuiError as e:
            row.update(source="?", path="", params=None, tokens_per_iter=None, total_tokens=None,
                       description="", error=str(e))
        rows.append(row)
    return rows


def cmd_presets(args: argparse.Namespace) -> int:
    """`gpttui presets [--json]`: name, source, params, tokens, description."""
    rows = preset_rows()
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="presets (user presets in the config dir shadow built-ins)", title_justify="left")
    for col, just in (("name", "left"), ("source", "left"), ("params", "right"),
                      ("tokens", "right"), ("description", "left")):
        table.add_column(col, justify=just, no_wrap=col != "description")
    for r in rows:
        params = _si(r["params"]) if r["params"] else "–"
        tokens = _si(r["total_tokens"]) if r["total_tokens"] else ("auto" if not r["error"] else "–")
        desc = f"[red]{r['error']}[/]" if r["error"] else r["description"]
        table.add_row(r["name"], r["source"], params, tokens, desc)
    _console().print(table)
    return 0
