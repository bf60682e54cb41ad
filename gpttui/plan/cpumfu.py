"""The MFU a training step reaches on a CPU, from the model's shape (for a priori time estimates).

A flat `assumed_mfu` (35 %) of the CPU's kept matmul peak mispredicted CPU runs both ways:
measured against the same peak, small models reach 15-20 % and mid-size ones 60-70 %.
A token's cost on a CPU, counted in FLOPs of the matmul peak, has three parts:

- the model's matmul FLOPs (`fpt` = 6·N + 12·L·d·T), at a fraction `MATMUL_EFFICIENCY` of
  the square-matmul peak (the peak is a best-of-5 square matmul; the model's are skinnier);
- the loss over the whole vocabulary: log-softmax and its gradient over V logits per token,
  memory-bound work that does not shrink with the model (`PER_VOCAB` per entry);
- the optimizer step: AdamW, clipping and zeroing pass over every parameter once per step,
  shared by the step's tokens (`PER_PARAM_STEP` per parameter / tokens per iteration).

    MFU = fpt / (fpt / MATMUL_EFFICIENCY + PER_VOCAB · V + PER_PARAM_STEP · N / tokens_per_iter)

The constants are fitted by `bench/cpu_estimate.py` (least squares over steady shapes: the
measured tokens/s against a matmul peak taken right before and after each run); the fit and
the agreement it gives are in bench/RESULTS.md. A run's own measured throughput replaces this.
No torch here.
"""

from __future__ import annotations

# Fitted 2026-11-30 on a 2-core x86 VM, torch 2.13 CPU, fp32, eager (bench/cpu_estimate.py
# --repeat 2, quiet machine, 6 shapes from 2L/64 to 8L/512): 0.741, 1,052 and 1,472; rounded
# here. The model's MFU is then 0.96-1.07 of the MFU each shape measured against a peak taken
# beside it. (A first fit under a load average of 7 gave 0.956, 1,292 and 8,582: a loaded
# machine slows the memory-bound terms more than the matmuls.)
MATMUL_EFFICIENCY = 0.75
PER_VOCAB = 1050.0
PER_PARAM_STEP = 1500.0
BASIS = "CPU model by shape (matmuls + loss over the vocabulary + optimizer per step; fitted in bench/cpu_estimate.py)"


def terms(fpt: float, vocab: int, params: int, tokens_per_iter: int) -> tuple[float, float, float]:
    """The three cost terms per token, before their coefficients (FLOPs, vocab entries, params per token)."""
    return float(fpt), float(vocab), params / max(1, tokens_per_iter)


def cpu_mfu(fpt: float, vocab: int, params: int, tokens_per_iter: int) -> float:
    """The fraction of the CPU's matmul peak a training step of this shape is expected to reach."""
    f, v, p = terms(fpt, vocab, params, tokens_per_iter)
    return f / (f / MATMUL_EFFICIENCY + PER_VOCAB * v + PER_PARAM_STEP * p)


def describe(mfu: float) -> str:
    return f"assumed MFU {mfu:.0%} on CPU for this shape ({BASIS})"
