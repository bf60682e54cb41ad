"""The CPU MFU model's rule (not its timing): what it says for shapes whose costs are known."""

from __future__ import annotations

import pytest

from gpttui import config as C
from gpttui.plan import cpumfu
from gpttui.plan import estimate as E


def _mfu(layers: int, width: int, block: int, batch: int) -> float:
    cfg = C.build({}, [f"n_layer={layers}", f"n_head={max(1, width // 64)}", f"n_embd={width}",
                       f"block_size={block}", f"batch_size={batch}", "gradient_accumulation_steps=1"], source="t")
    f, v, p = E.cpu_cost_terms(cfg)
    return cpumfu.cpu_mfu(f, int(v), int(p * cfg.tokens_per_iter), cfg.tokens_per_iter)


def test_the_cost_per_token_is_the_three_terms():
    f, v, p = 20e6, 50304, 3_300_000
    cost = f / cpumfu.MATMUL_EFFICIENCY + cpumfu.PER_VOCAB * v + cpumfu.PER_PARAM_STEP * p / 1024
    assert cpumfu.cpu_mfu(f, v, p, 1024) == pytest.approx(f / cost)


def test_wider_models_and_bigger_steps_use_more_of_the_peak():
    # the vocabulary's loss and the optimizer's pass weigh less against wider matmuls
    assert _mfu(4, 64, 128, 8) < _mfu(4, 128, 256, 8) < _mfu(6, 384, 256, 8) < _mfu(12, 768, 1024, 8)
    # the optimizer's pass is shared by more tokens
    assert _mfu(4, 64, 128, 2) < _mfu(4, 64, 128, 8) < _mfu(4, 64, 128, 32)
    # never above the matmuls' own efficiency, never zero
    assert 0 < _mfu(2, 64, 64, 1) < _mfu(48, 1600, 1024, 64) < cpumfu.MATMUL_EFFICIENCY


def test_the_estimate_uses_it_on_cpu_only_and_says_so():
    cfg = C.build({}, ["n_layer=4", "n_head=4", "n_embd=64", "block_size=128", "batch_size=8",
                       "gradient_accumulation_steps=1"], source="t")
    cpu = E.estimate(cfg, None, device_kind="cpu", peak_tflops=0.3, peak_basis="kept")
    assert 0.1 < cpu.mfu.value < 0.3 and cpu.mfu.basis.startswith("assumed MFU") and "CPU model" in cpu.mfu.basis
    assert cpu.tokens_per_s.value == pytest.approx(0.3e12 * cpu.mfu.value / cpu.flops_per_token.value)
    gpu = E.estimate(cfg, None, device_kind="cuda", peak_tflops=50.0, peak_basis="table")
    assert gpu.mfu.value == cfg.assumed_mfu
    auto = E.estimate(cfg.replace(batch_size="auto"), None, device_kind="cpu", peak_tflops=0.3)
    assert auto.mfu.value == pytest.approx(_mfu(4, 64, 128, E.AUTO_CPU_BATCH))
