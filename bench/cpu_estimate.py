"""The a priori CPU time estimate against the Trainer's measured throughput, shape by shape.

For each shape: the estimate's tokens/s (what `gpttui estimate` and the editor show on CPU:
the kept matmul peak of this machine x the CPU MFU model of `gpttui.plan.cpumfu`) next to the
Trainer's tokens/s over `--iters` steps after `--warmup` (no listeners, no run folder, fp32,
eager), and the matmul peak measured again right after each run: `MFU now` is the measured
throughput against that fresh peak, the figure the model predicts, robust to the load that
slows both alike. Shapes run in an order that alternates between repeats.

  python bench/cpu_estimate.py                       # the default shapes, 1 repeat
  python bench/cpu_estimate.py --shapes 4/128/256 6/384/256 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPES = ["2/64/64/8", "4/64/128/8", "4/64/128/2", "4/128/256/8", "6/384/256/4", "8/512/256/2"]  # layers/width/block/batch


def cfg_for(shape: str, batch: int):
    from gpttui import config as C

    layers, width, block, *b = (int(x) for x in shape.split("/"))
    batch = b[0] if b else batch
    heads = max(1, width // 64) if width >= 256 else max(2, width // 32)
    return C.build({}, [f"n_layer={layers}", f"n_head={heads}", f"n_embd={width}", f"block_size={block}",
                        f"batch_size={batch}", "gradient_accumulation_steps=1", "dropout=0.0", "dataset=bench",
                        "data_source=", "device=cpu", "compile=false", "dtype=float32", "eval_interval=1000000",
                        "eval_iters=1", "log_interval=1", "checkpoint_interval_s=0", "always_save_checkpoint=false",
                        "warmup_iters=0", "decay_lr=false"], source="bench")


def predicted(cfg, peak: float) -> tuple[float, float, str]:
    from gpttui.plan.estimate import estimate

    est = estimate(cfg, device_kind="cpu", peak_tflops=peak, peak_basis="kept")
    return float(est.tokens_per_s.value), float(est.mfu.value), est.tokens_per_s.basis


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=SHAPES, metavar="L/D/T")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("GPTTUI_DATA_DIR", tempfile.mkdtemp(prefix="gpttui-bench-est-"))
    import torch
    import train as T  # bench/train.py: the Trainer timing and the data file

    from gpttui.plan import hardware as H
    from gpttui.plan.estimate import estimate

    T.WARMUP = args.warmup
    kept = H.measured_matmul_tflops("cpu", "float32")  # kept per machine: what estimates use
    print(f"kept CPU peak {kept:.3g} TFLOPS ({torch.get_num_threads()} torch threads)")
    rows: dict[str, list[tuple[float, float, float]]] = {s: [] for s in args.shapes}
    T.write_data(cfg_for(args.shapes[0], args.batch), 2_000_000)
    for r in range(args.repeat):
        for shape in args.shapes if r % 2 == 0 else args.shapes[::-1]:
            cfg = cfg_for(shape, args.batch)
            before = H._matmul_tflops("cpu", "float32")  # side by side with the run, under the same load
            tps = cfg.tokens_per_iter * args.iters / T.trainer_time(cfg, args.warmup, args.iters, False)
            after = H._matmul_tflops("cpu", "float32")
            now = (before + after) / 2
            f = estimate(cfg, device_kind="cpu", peak_tflops=now).flops_per_token.value
            rows[shape].append((tps, tps * f / (now * 1e12), abs(before - after) / now))
            print(f"  {shape:>12}: {tps:>9,.0f} tok/s measured, peak before/after {before:.3g}/{after:.3g} TFLOPS,"
                  f" MFU now {rows[shape][-1][1]:.1%}", flush=True)
    print(f"\n{'shape L/d/T/B':>14} {'measured':>10} {'MFU now':>8} {'model MFU':>9} {'predicted':>10} {'pred/meas':>9}"
          f" {'model/now':>9}")
    fit_rows = []
    for shape, vals in rows.items():
        cfg = cfg_for(shape, args.batch)
        tps = statistics.median(v[0] for v in vals)
        mfu_now = statistics.median(v[1] for v in vals)
        pred, model_mfu, _ = predicted(cfg, kept)
        steady = all(v[2] < 0.15 for v in vals)
        print(f"{shape:>14} {tps:>10,.0f} {mfu_now:>8.1%} {model_mfu:>9.1%} {pred:>10,.0f} {pred / tps:>9.2f}"
              f" {model_mfu / mfu_now:>9.2f}{'' if steady else '   (load changed during the run)'}")
        if steady:
            fit_rows.append((cfg, mfu_now))
    print("pred/meas: the estimate (kept peak) over the measured tokens/s; model/now: the model's MFU over the"
          " MFU measured against a peak taken under the same load (the model's own error)")
    if len(fit_rows) >= 3:
        fit(fit_rows)
    return 0


def fit(rows: list) -> None:
    """Least squares of the CPU model's three terms on the steady shapes (see gpttui.plan.cpumfu)."""
    import numpy as np

    from gpttui.plan.estimate import cpu_cost_terms as cfg_terms

    a = np.array([cfg_terms(cfg) for cfg, _ in rows], dtype=float)  # the three terms per token
    y = np.array([cfg_terms(cfg)[0] / m for cfg, m in rows], dtype=float)  # what each token cost, in peak FLOPs
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    print(f"fit on {len(rows)} steady shapes: matmul efficiency {1 / coef[0]:.3f}, per vocab entry {coef[1]:.1f},"
          f" per parameter per token of a step {coef[2]:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
