"""Why gpttui.model.loss forms the gradients in the forward: it against recomputing the logits in
the backward, the LM head alone (C1's: 2,048 rows, d 128, V 50,304, fp32, 256-row chunks).

Each variant runs in its own process (peak RSS is per process), alternating, `--repeat`
times; per run the median of 3 timed forward+backward passes after one warm-up.

  python bench/loss_variants.py --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def recompute_fn():
    import torch

    class Recompute(torch.autograd.Function):
        """Forward: loss and per-row log-sum-exp only; backward: the logits again, per chunk."""

        @staticmethod
        def forward(ctx, x, w, t, rows):  # type: ignore[override]
            n_valid = (t != -1).sum()
            lses, total = [], torch.zeros(())
            for i in range(0, x.size(0), rows):
                z = x[i : i + rows] @ w.t()
                lse = torch.logsumexp(z, 1)
                valid = t[i : i + rows] != -1
                safe = torch.where(valid, t[i : i + rows], 0)
                total = total + ((lse - z.gather(1, safe[:, None])[:, 0]) * valid).sum()
                lses.append(lse)
            ctx.save_for_backward(x, w, t, torch.cat(lses), n_valid)
            ctx.rows = rows
            return total / n_valid

        @staticmethod
        def backward(ctx, go):  # type: ignore[override]
            x, w, t, lse, n_valid = ctx.saved_tensors
            gx, gw = torch.empty_like(x), torch.zeros_like(w)
            for i in range(0, x.size(0), ctx.rows):
                xc, tc = x[i : i + ctx.rows], t[i : i + ctx.rows]
                p = (xc @ w.t()).sub_(lse[i : i + ctx.rows, None]).exp_()
                valid = (tc != -1).float()
                p.scatter_add_(1, torch.where(tc != -1, tc, 0)[:, None], -valid[:, None])
                p.mul_((valid * go / n_valid)[:, None])
                gx[i : i + ctx.rows] = p @ w
                gw.addmm_(p.t(), xc)
            return gx, gw, None, None

    return lambda x, w, t: Recompute.apply(x, w, t, 256)


def child(variant: str) -> None:
    import torch

    from gpttui.model.loss import linear_cross_entropy

    fn = recompute_fn() if variant == "recompute" else (lambda x, w, t: linear_cross_entropy(x, w, t, chunk_rows=256))
    torch.manual_seed(0)
    x = torch.randn(2048, 128, requires_grad=True)
    w = (torch.randn(50304, 128) * 0.02).requires_grad_()
    t = torch.randint(0, 50304, (2048,))
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        fn(x, w, t).backward()
        times.append(time.perf_counter() - t0)
        x.grad = w.grad = None
    print(f"{statistics.median(times[1:])} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--child", choices=("fused", "recompute"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child)
        return 0
    res: dict[str, list[tuple[float, float]]] = {"fused": [], "recompute": []}
    for rep in range(args.repeat):
        for v in (("fused", "recompute") if rep % 2 == 0 else ("recompute", "fused")):
            out = subprocess.run([sys.executable, __file__, "--child", v], capture_output=True, text=True, check=True)
            s, rss = map(float, out.stdout.split())
            res[v].append((s, rss))
            print(f"repeat {rep + 1} {v:>9}: {s:.3f} s per forward+backward, peak RSS {rss:,.0f} MiB", flush=True)
    for v, runs in res.items():
        print(f"{v:>9}: median {statistics.median(r[0] for r in runs):.3f} s, peak RSS {statistics.median(r[1] for r in runs):,.0f} MiB")
    ratios = [r[0] / f[0] for f, r in zip(res["fused"], res["recompute"], strict=True)]
    print(f"recompute / fused time: {statistics.median(ratios):.2f} (repeats {', '.join(f'{x:.2f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
