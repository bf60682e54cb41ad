"""The LM head's gradient through the chunked loss under fp16 autocast + GradScaler (and bf16),
against fp32: the share of the fp32 gradient's non-zero entries that are zero (flushed) and
the relative errors. Issue #20's figure: 4,096 tokens x 50,304 classes.

  OMP_NUM_THREADS=1 python bench/fp16_head.py 4096 50304 64     # N, vocab, n_embd (CPU: ~30 min)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gpttui.model.loss import linear_cross_entropy  # noqa: E402


def run(x, w, t, dtype):
    xp, wp = x.clone().requires_grad_(), w.clone().requires_grad_()
    opt = torch.optim.SGD([xp, wp], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = linear_cross_entropy(xp, wp, t)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    return loss.detach(), xp.grad, wp.grad


def main() -> None:
    n, v, c = (int(a) for a in (sys.argv[1:4] if len(sys.argv) > 3 else (4096, 50304, 64)))
    torch.manual_seed(0)
    x, w, t = torch.randn(n, c), torch.randn(v, c) * 0.02, torch.randint(0, v, (n,))
    t0 = time.time()
    l0, gx0, gw0 = run(x, w, t, None)
    nz = gw0 != 0
    for dt in (torch.float16, torch.bfloat16):
        loss, gx, gw = run(x, w, t, dt)
        flushed = ((gw == 0) & nz).sum().item() / nz.sum().item()
        rel = ((gw - gw0).norm() / gw0.norm()).item()
        relx = ((gx - gx0).norm() / gx0.norm()).item()
        print(f"{dt}: loss {loss.item():.4f} vs fp32 {l0.item():.4f}; head grad non-zero entries flushed "
              f"{flushed:.4%}; rel err head {rel:.2e}, x {relx:.2e}; finite {bool(gw.isfinite().all())} (measured)")
    print(f"{n} x {v} x {c}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
