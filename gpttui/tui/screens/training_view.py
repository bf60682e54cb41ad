"""What the Training screen says, as text built from a LiveRun: plain functions of the run's
state and the time now, so they are tested without a screen and cost one pass per frame.

Rules: a figure that is not measured on this device is left out (no "–" placeholders); a
figure that moves between events (elapsed, ETA, micro-steps) is extrapolated from the
newest event and the clock, so the screen ticks every second even inside a long step.
"""

from __future__ import annotations

import time

from rich.text import Text

from gpttui import events as E
from gpttui import fmt
from gpttui.tui.live import LiveRun

SIDE_WIDTH = 44  # columns of the side panel's text at 100-120 columns


def progress_line(frac: float | None, width: int) -> Text:
    """`████░░░░` filled to `frac` (None: nothing known yet, an empty dim bar)."""
    if frac is None:
        return Text(fmt.bar(0.0, max(4, width)), style="dim", no_wrap=True, overflow="crop")
    return Text(fmt.bar(frac, max(4, width)), style="green", no_wrap=True, overflow="crop")


def fraction_done(live: LiveRun) -> float | None:
    """Optimizer steps done plus the micro-steps of the one in progress, over max_iters."""
    pos, total = live.position(), live.max_iters
    if pos is None or not total:
        return None
    it, micro, accum, _ = pos
    return min(1.0, (it + (micro / accum if accum else 0.0)) / total)


def iter_text(live: LiveRun) -> str:
    """`24.7%  iter 1,234/5,000 · step 1,235: micro 12/64 · 1.2M tok`."""
    pos, total = live.position(), live.max_iters
    if pos is None or not total:
        return " waiting for the first step"
    it, micro, accum, seen = pos
    parts = [f" {100 * (fraction_done(live) or 0.0):.1f}%  iter {it:,}/{total:,}"]
    if accum > 1 and live.running and it < total:
        parts.append(f"step {it + 1:,}: micro {micro}/{accum}")
    parts.append(f"{fmt.si(seen)} tok")
    return " · ".join(parts)


def numbers_text(live: LiveRun, now: float) -> str:
    """The side panel's figures: each one measured, or left out."""
    s = live.step
    elapsed = live.elapsed_at(now)
    if s is None:
        return before_first_log(live) + (f"\nelapsed    {fmt.duration(elapsed)}" if elapsed is not None else "")
    best = live.best_val
    eta = live.eta_at(now)
    lines = [loss_line(s, best)]
    lines += task_lines(live)
    if live.active or (live.forecast is not None and live.state != E.FINISHED):  # (a finished run's loss is measured;
        lines.append(forecast_text(live))  # an ended run gets no more evals: no "not enough yet")
    if s.tokens_per_s > 0:
        step = f"{s.step_time_s * 1000:,.0f} ms" if s.step_time_s < 10 else fmt.duration(s.step_time_s)
        lines.append(f"tokens/s   {fmt.si(s.tokens_per_s)} (measured)   step {step}")
    spent = f"elapsed    {fmt.duration(elapsed)}"
    eta_text = ""
    if not live.active:
        pass  # ended: no ETA
    elif s.compiling:
        eta_text = "after compiling"
    elif eta is not None and live.state == E.PAUSED:
        eta_text = f"{fmt.duration(eta)} once resumed"  # (no clock time: the pause moves it)
    elif eta is not None:
        eta_text = f"{fmt.duration(eta)} → {eta_clock(now, now + eta)}"
    if eta_text and len(spent) + len(eta_text) + 7 <= SIDE_WIDTH:  # one line: room for the forecast's
        lines.append(f"{spent}   ETA {eta_text}")
    else:
        lines += [f"ETA        {eta_text}"] if eta_text else []
        lines.append(spent)
    lr = f"lr         {s.lr:.2e}"
    lines.append(lr + (f"   grad norm {s.grad_norm:.3f}" if s.grad_norm is not None else ""))
    power = []
    if s.power_w is not None:
        power.append(f"{s.power_w:.0f} W")
    if s.energy_kwh is not None:
        power.append(f"energy {s.energy_kwh:.3f} kWh")
    if power:
        lines.append("power      " + "   ".join(power))
    return "\n".join(lines)


def loss_line(s: E.StepMetrics, best: float | None) -> str:
    """`train loss 3.4123 @ 1,200   best val 3.5012`: which loss, and the iteration it was
    logged at (an eval or a long step shows it for a while after). The first that fits."""
    val = f"   best val {best:.4f}" if best is not None else ""
    tries = [f"train loss {s.loss:.4f} @ {s.iter:,}{val}", f"train loss {s.loss:.4f}{val}"]
    return next((t for t in tries if len(t) <= SIDE_WIDTH), tries[-1])


def eta_clock(now: float, t: float) -> str:
    """The wall-clock time of the ETA: '14:05' today, 'Wed 14:05' on another day."""
    if time.localtime(now)[:3] == time.localtime(t)[:3]:
        return time.strftime("%H:%M", time.localtime(t))
    return fmt.clock(t)


def before_first_log(live: LiveRun) -> str:
    """The side panel before the first logged step: what the run is doing instead, in its
    state's words (an eval of the untrained model, a compile, data), and when figures come."""
    pos = live.position()
    done = pos[0] if pos is not None else 0
    if not live.active and live.state in (E.FAILED, E.STOPPED, E.FINISHED):
        return f"{live.state} at iter {done:,}, before its first logged step"
    if done:
        return f"iter {done:,} done; loss and speed\nfrom the first logged step (log_interval)"
    if live.state == E.EVALUATING:
        return "evaluating the untrained model (iter 0);\nloss and speed from the first logged step"
    if live.state == E.COMPILING:
        return "compiling the model (torch.compile);\nloss and speed from the first logged step"
    if live.state == E.PREPARING:
        return "preparing the data; training follows"
    return "waiting for the first step…"


def task_lines(live: LiveRun) -> list[str]:
    """The newest HellaSwag figure (acc_norm ± binomial standard error, measured on the
    loop's fixed subset) and the marks to read it against; nothing before the first."""
    if not live.tasks:
        return []
    t = live.tasks[-1]
    return [f"hellaswag  {t.acc_norm:.4f} ± {t.stderr:.3f} ({t.n:,} ex.)",
            "           random 0.25 · GPT-2 124M 0.2955"]


def forecast_text(live: LiveRun) -> str:
    """`forecast   3.412 ± 0.046 @ 20,000 · 12 evals`: the final val loss (at max_iters) the
    trainer computed from the evals so far (gpttui.plan.forecast), or why there is none.
    One line of the side panel (SIDE_WIDTH): the first wording that fits."""
    fc = live.forecast
    if fc is None:
        return f"forecast   not enough evals yet ({len(live.evals)} so far)"
    tries = [f"forecast   {fc.loss:.3f} ± {fc.band:.3f} at iter {fc.at_iter:,} · {fc.n_evals} evals",
             f"forecast   {fc.loss:.3f} ± {fc.band:.3f} @ {fc.at_iter:,} · {fc.n_evals} evals",
             f"forecast   {fc.loss:.3f}±{fc.band:.3f} @ {fc.at_iter:,} · {fc.n_evals} evals"]
    return next((t for t in tries if len(t) <= SIDE_WIDTH), tries[-1])


def mfu_basis_line(s: E.StepMetrics) -> Text:
    """The MFU basis, once, in full."""
    if s.peak_tflops:
        peak = f"{s.peak_tflops:.3g} TFLOPS"
        basis = s.peak_basis if peak in s.peak_basis else f"{peak}: {s.peak_basis}"  # the figure once
        return Text(f"MFU = model FLOPs/s (measured) ÷ peak {basis}", style="dim")
    return Text(f"MFU not shown: {s.peak_basis}", style="dim")


def ram_detail(s: E.StepMetrics) -> tuple[float, str] | None:
    """(fraction, text) for the host RAM gauge, or None when not measured."""
    if s.ram_used is None or not s.ram_total:
        return None
    return s.ram_used / s.ram_total, f"{s.ram_used / 2**30:.1f}/{fmt.gib(s.ram_total)} (process)"


def vram_detail(s: E.StepMetrics) -> tuple[float, str] | None:
    total = s.vram_total
    used = s.vram_used if s.vram_used is not None else s.vram_nvml_used
    if not total or used is None:
        return None
    peak = f", peak {s.vram_peak / 2**30:.1f}" if s.vram_peak is not None else ""
    return used / total, f"{used / 2**30:.1f}/{fmt.gib(total)}{peak}"


def spark_label(values: tuple[float, ...]) -> str:
    """The sparkline's label; it agrees with what the line draws (nothing under 2 logs)."""
    if not values:
        return "train loss per log: none yet"
    if len(values) == 1:
        return f"train loss {values[0]:.3f} (1 log; a line from 2)"
    return f"train loss, last {len(values)} logs  {max(values):.3f} → {values[-1]:.3f}"


def sample_text(live: LiveRun, index: int | None) -> Text:
    """The sample at `index` (None: the newest), with the iteration and val loss it was
    generated at; the prompt dim, the completion plain."""
    if not live.samples:
        return Text("samples: one per evaluation (config sample_tokens, sample_prompt)", style="dim")
    n = len(live.samples)
    i = n - 1 if index is None else max(0, min(n - 1, index))
    sm = live.samples[i]
    val = f" · val {sm.val_loss:.4f}" if sm.val_loss is not None else ""
    t = Text(f"sample {i + 1}/{n} @ iter {sm.iter:,}{val}  [ ]\n", style="bold")
    t.append(sm.prompt.replace("\n", "⏎ "), style="dim")
    t.append(sm.text if sm.text.strip() else f"(only whitespace: {sm.text!r})")
    return t


def banner_text(w: E.RunWarning) -> Text:
    t = Text(f" ⚠ {w.text} ", style="bold black on yellow")
    t.append(f" → {w.hint}", style="yellow")
    t.append("   (w: dismiss)", style="dim")
    return t
