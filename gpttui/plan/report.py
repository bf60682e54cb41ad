"""`gpttui --estimate PRESET` and `gpttui presets`: rich tables or `--json`.

The estimate's device is resolved by `gpttui.plan.target` (`--gpu`, else the config's `gpu`,
else the CPU for `device = "cpu"`, else what NVML detects), as for the TUI's panels.
Table cards keep this path torch-free; a CPU or a card outside the table gets a short
measured matmul peak (imports torch).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from typing import Any

from gpttui import presets as P
from gpttui.config import TrainConfig
from gpttui.errors import GpttuiError
from gpttui.fmt import figure, si_spaced
from gpttui.plan import estimate as E
from gpttui.plan.target import Target, estimate_for, resolve_target


def build_estimate(cfg: TrainConfig, gpu_arg: str | None) -> tuple[E.Estimate, Target]:
    """`--estimate`'s figures: the one target resolution and estimate the TUI also uses."""
    target = resolve_target(cfg, gpu_arg=gpu_arg)
    return estimate_for(cfg, target), target


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


def render_estimate(est: E.Estimate, title: str, cpu: bool = False) -> Any:
    """A rich Table: one grouped section per part, value and basis on every row (`cpu`:
    a CPU target, where "per GPU" would be wrong)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("figure", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("basis", style="dim")
    for section, rows in SECTIONS:
        table.add_row(f"[cyan]{section.replace(' per GPU', '') if cpu else section}[/]", "", "", end_section=False)
        for key, label in rows:
            label = label.replace(" per GPU", "") if cpu else label
            fig = getattr(est, key)
            table.add_row(f"  {label}", figure(fig), fig.basis)
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
    inherited = P.inherited_batching_warning(preset.keys, cfg, est.time_s.value)
    if inherited:
        est = replace(est, warnings=(inherited, *est.warnings))
    if getattr(args, "json", False):
        out = {"preset": preset.name, "source": preset.source, "target_source": target.source,
               **est.to_json()}
        print(json.dumps(out, indent=2, default=_json_default))
        return 0
    console = _console()
    title = (f"{preset.name} ({preset.source}) on {cfg.n_gpus} × {target.name}, "
             f"{est.dtype.value} — {preset.description or 'no description'}")
    console.print(render_estimate(est, title, cpu=target.kind == "cpu"))
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
        params = si_spaced(r["params"]) if r["params"] else "–"
        tokens = si_spaced(r["total_tokens"]) if r["total_tokens"] else ("auto" if not r["error"] else "–")
        desc = f"[red]{r['error']}[/]" if r["error"] else r["description"]
        table.add_row(r["name"], r["source"], params, tokens, desc)
    _console().print(table)
    return 0
