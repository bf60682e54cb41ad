"""The headless step line's figures read alike at every size."""

from __future__ import annotations

from gpttui import events as E
from gpttui.cli.printers import step_line


def _step(tps: float) -> E.StepMetrics:
    return E.StepMetrics("r", iter=20, max_iters=150, loss=3.5, lr=1e-3, grad_norm=None, step_time_s=0.1,
                         tokens_per_s=tps, tokens_seen=20, elapsed_s=2.0, eta_s=None, mfu=None,
                         peak_tflops=None, peak_basis="CPU matmul")


def test_tokens_per_second_is_whole_below_a_thousand_as_above():
    assert "| 549 tok/s |" in step_line(_step(548.7))  # was "548.7 tok/s" beside "1.3k tok/s"
    assert "| 1.3k tok/s |" in step_line(_step(1312.0))
