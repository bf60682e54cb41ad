"""Muon for the hidden matrices and AdamW for the rest, as ONE torch optimizer.

One object (not a pair) so everything that handles "the optimizer" keeps working for the
modern recipe unchanged: `GradScaler.step/unscale_`, `zero_grad`, `state_dict` /
`load_state_dict` for exact resume, the auto-batch probe's `state.clear()`, DDP (each
rank holds whole, already all-reduced gradients: Muon here is per-parameter).

Each param group says which rule it follows (`kind`: "muon" or "adamw") and carries its
own `base_lr`; the schedule sets `lr = base_lr × multiplier` (see `gpttui.model.recipes`).

Muon (Keller Jordan, 2024): SGD momentum (Nesterov), then the update matrix is replaced
by its nearest semi-orthogonal matrix, computed with 5 Newton–Schulz iterations with the
published coefficients (3.4445, -4.7750, 2.0315), and scaled by sqrt(max(1, rows/cols)).
State: one momentum buffer per matrix (4 B/param), against AdamW's two.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch.optim.adamw import adamw

NS_COEFFS = (3.4445, -4.7750, 2.0315)


def ns_dtype(device_type: str, bf16_supported: bool) -> torch.dtype:
    """The dtype of the Newton–Schulz iterations: bf16 on CUDA cards that support it (for
    speed; its fp32 range holds the iterates), fp32 everywhere else. Not fp16: the iterate's
    squares and products (x·xᵀ, m·m) of a normalised matrix stay small, but fp16's 10-bit
    mantissa and narrow range give no margin, and the cards without bf16 (T4, V100) run fp32
    matmuls on a few small matrices at acceptable cost."""
    return torch.bfloat16 if device_type == "cuda" and bf16_supported else torch.float32


def _bf16_supported(device: torch.device) -> bool:
    return device.type == "cuda" and _cuda_bf16(device.index if device.index is not None else torch.cuda.current_device())


@functools.cache
def _cuda_bf16(index: int) -> bool:
    """Native bf16 on CUDA card `index` (Ampere and later; emulation does not count)."""
    with torch.cuda.device(index):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def orthogonalize(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """An approximately semi-orthogonal matrix with g's row/column spaces (Newton–Schulz in
    `ns_dtype`); g may be a stack (..., rows, cols)."""
    a, b, c = NS_COEFFS
    x = g.to(ns_dtype(g.device.type, _bf16_supported(g.device)))
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)  # per matrix of a stack
    for _ in range(steps):
        m = x @ x.mT
        x = a * x + (b * m + c * (m @ m)) @ x
    if tall:
        x = x.mT
    return x.to(g.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Groups with kind="muon" (2-D weights: lr, momentum, weight_decay) and kind="adamw"
    (lr, betas, eps, weight_decay). Weight decay is decoupled (lr × wd × weight)."""

    def __init__(self, groups: list[dict[str, Any]]):
        defaults = dict(lr=0.02, momentum=0.95, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0,
                        kind="adamw", ns_steps=5)
        for g in groups:
            if g.get("kind") == "muon" and any(p.dim() != 2 for p in g["params"]):
                raise ValueError("Muon groups hold 2-D weight matrices only")
            g.setdefault("base_lr", g.get("lr", defaults["lr"]))
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["kind"] == "muon":
                self._muon(group)
            else:
                self._adamw(group)
        return loss

    def _muon(self, group: dict[str, Any]) -> None:
        """Momentum per matrix, then one batched Newton–Schulz per shape: a model's hidden
        matrices come in few shapes, so a step costs ~15 matmul launches per shape instead
        of 15 per matrix (which dominated small models' steps)."""
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        by_shape: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(mom).add_(p.grad)
            by_shape.setdefault(tuple(p.shape), []).append((p, p.grad.add(buf, alpha=mom)))  # Nesterov
        for (rows, cols), items in by_shape.items():
            updates = orthogonalize(torch.stack([u for _, u in items]), group["ns_steps"])
            scale = -lr * math.sqrt(max(1.0, rows / cols))
            for (p, _), u in zip(items, updates.unbind(0), strict=True):
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(u, alpha=scale)

    def _adamw(self, group: dict[str, Any]) -> None:
        """torch's own AdamW arithmetic (fused kernel on CUDA) on this group's tensors."""
        params, grads, avgs, sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device if p.is_cuda else "cpu")
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        b1, b2 = group["betas"]
        fused = all(p.is_cuda for p in params) or None
        adamw(params, grads, avgs, sqs, [], steps, fused=fused, amsgrad=False, beta1=b1, beta2=b2,
              lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
