"""EstimatePanel: the requirements estimate of the config being edited.

Shows parameters, tokens, epochs, FLOPs, a VRAM bar against the device's memory, time,
energy and cost, and the estimate's warnings; every figure keeps its basis available
(computed / assumed / measured) in a tooltip-free dim line, since that is the point.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from gpttui import fmt


def fit_label(est: Any) -> str:
    """'fits 15%' / 'tight 92%' / 'OOM 140%' / '?' for the presets table."""
    verdict, total, dev = est.mem_verdict.value, est.mem_total.value, est.mem_device.value
    if not verdict:
        return "?"
    share = f" {100 * total / dev:.0f}%" if total and dev else ""
    return f"{verdict}{share}"


def memory_label(est: Any) -> str:
    """'VRAM' against GPU memory, 'RAM' against system RAM (a CPU run)."""
    return "RAM" if "RAM" in est.mem_device.basis else "VRAM"


def speed_basis(est: Any) -> str:
    """Whether the speed (and so the time) is measured by a past run or computed: Home's
    time and the editor's could differ by that, with nothing saying why."""
    basis = str(est.tokens_per_s.basis)
    if est.tokens_per_s.value is None:
        return ""
    if basis.startswith("measured in run "):
        return f"measured, run {basis.removeprefix('measured in run ')}"
    return "measured" if basis.startswith("measured") else "computed"


def render_estimate(est: Any, width: int = 36) -> Text:
    """The panel's text for an `Estimate`."""
    t = Text()
    t.append("Estimate", style="bold underline")
    t.append(f"  {est.dtype.value}\n{est.device.value}\n", style="dim")

    def row(label: str, value: str, basis: str = "") -> None:
        t.append(f"{label:<12}", style="bold")
        t.append(value)
        if basis:
            t.append(f"  {basis}", style="dim")
        t.append("\n")

    row("params", fmt.si(est.params_nanogpt.value), f"total {fmt.si(est.params_total.value)}")
    row("tokens/iter", fmt.si(est.tokens_per_iter.value))
    row("total tok", fmt.si(est.total_tokens.value), f"{fmt.num(est.tokens_per_param.value, '.3g')} tok/param")
    row("epochs", fmt.num(est.epochs.value, ".2f"), "" if est.epochs.value is not None else "not prepared")
    row("FLOPs", fmt.flops(est.total_flops.value))
    total, dev = est.mem_total.value, est.mem_device.value
    frac = total / dev if total and dev else None
    style = {"fits": "green", "tight": "yellow"}.get(str(est.mem_verdict.value), "red")
    t.append(f"{memory_label(est):<12}", style="bold")
    t.append(fmt.bar(frac, max(8, width - 22)), style=style if frac is not None else "dim")
    t.append(f" {fmt.gib(total)}\n")
    share = f" {frac:.0%}" if frac is not None else ""
    t.append(f"{'':<12}{est.mem_verdict.value or '?'}{share} of {fmt.gib(dev)}\n", style="dim")
    row("time", fmt.duration(est.time_s.value), f"at MFU {fmt.pct(est.mfu.value, 0)}")
    row("speed", fmt.si(est.tokens_per_s.value, " tok/s"), speed_basis(est))
    if est.energy_kwh.value is not None:
        row("energy", f"{est.energy_kwh.value:.2f} kWh", f"{fmt.num(est.power_w.value, '.0f')} W")
    else:
        row("energy", fmt.DASH, "power unknown" if est.power_w.value is None else "")
    cost = est.cost.value
    row("cost", f"{cost:.2f} {est.cost.unit}" if cost is not None else fmt.DASH)
    t.append(f"peak: {est.peak_tflops.basis}\n", style="dim")
    for w in est.warnings:
        t.append(f"⚠ {w}\n", style="yellow")
    return t


class EstimatePanel(Static):
    """Shows an Estimate, or a message while computing / when the config is invalid."""

    def show_estimate(self, est: Any) -> None:
        self.update(render_estimate(est, max(30, self.content_size.width or 36)))

    def show_message(self, text: str, error: bool = False) -> None:
        self.update(Text(text, style="red" if error else "dim"))
