#!/usr/bin/env bash
# GPU checks run on a lent machine (see bench/RESULTS.md): the trainer's overhead next to a
# bare loop, a real compiled headless run of seed-000's shape, batch_size=auto, and the
# estimate for the same config, and the TUI's cost to training. Usage: bash bench/gpu_check.sh OUTDIR
set -u
out=${1:-/tmp/gpu-check}; mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-}:$PWD" PYTHONUNBUFFERED=1
export GPTTUI_DATA_DIR=/tmp/gpttui-data GPTTUI_CONFIG_DIR=/tmp/gpttui-conf
py=python3
nvidia-smi --query-gpu=name,memory.total,power.limit,driver_version --format=csv | tee "$out/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$out/gpu.txt"
S="--set gradient_accumulation_steps=4 --set max_iters=60 --set lr_decay_iters=60 --set warmup_iters=10 --set eval_interval=30 --set eval_iters=10 --set log_interval=5 --set dataset=pystdlib --set data_source=builtin:pystdlib --set val_fraction=0.01 --set device=cuda --set gpu="
echo "== estimate (seed-000 shape, accum 4)"; $py -m gpttui --estimate seed-000 $S --gpu H100 2>&1 | tee "$out/estimate.txt" | grep -E "peak|verdict|throughput|activations|logits|MFU"
echo "== headless compiled run"; timeout 240 $py -m gpttui train seed-000 $S --plain 2>&1 | tee "$out/run.txt" | tail -22
echo "== batch_size=auto"; timeout 120 $py -m gpttui train seed-000 $S --set batch_size=auto --set max_iters=10 --set lr_decay_iters=10 --set warmup_iters=2 --set eval_interval=10 --set compile=false --plain 2>&1 | tee "$out/auto.txt" | grep -vE "^iter" | tail -8
echo "== bench/train.py"; timeout 300 $py bench/train.py --device cuda --preset seed-000 --set gradient_accumulation_steps=4 --compile --iters 20 --warmup 5 --repeat 3 2>&1 | tee "$out/bench_train.txt" | tail -8
echo "== bench/tui.py (TUI attached vs headless, key latency; needs textual)"; timeout 420 $py bench/tui.py --device cuda --preset seed-000 --set gradient_accumulation_steps=2 --compile --iters 300 --warmup 10 --repeat 3 --presses 20 2>&1 | tee "$out/bench_tui.txt" | grep -v Warn | tail -12
# -- issue #9: the chunked loss (bench/memory.py). Plain vs chunked in alternating child
# processes at seed-000's micro-batch 16 x 1024, compiled, bf16: peak allocated/reserved,
# tokens/s, ratios, the estimate's error (targets: allocated <= 0.6x plain, tokens/s >= 1.0x).
# Then the largest micro-batch whose eager bf16 step fits a 12 GiB cap
# (torch.cuda.set_per_process_memory_fraction), per path (target: at least doubles).
M="--device cuda --preset seed-000 --set batch_size=16 --set gradient_accumulation_steps=1 --set dtype=bfloat16"
echo "== bench/memory.py (seed-000 16x1024, compiled bf16)"; timeout 540 $py bench/memory.py $M --compile --iters 10 --warmup 3 --repeat 3 2>&1 | tee "$out/bench_memory.txt" | tail -14
echo "== bench/memory.py --max-batch --cap-gib 12 (eager bf16)"; timeout 300 $py bench/memory.py $M --max-batch --cap-gib 12 2>&1 | tee "$out/bench_memory_cap.txt" | tail -3
# -- issue #20: fp16 (the autocast dtype on cards without bf16). bench/fp16.py: one micro-batch
# of seed-000's shape, both recipes, chunked and plain loss, fp16 + GradScaler and bf16 against
# fp32: the share of the head gradient flushed to zero (must be < 0.1 %; it was 92 %), relative
# errors, and 20 AdamW steps side by side. Then the real trainer, dtype=float16 vs bfloat16,
# 40 steps each (eager): the losses must track each other.
echo "== bench/fp16.py (seed-000 16x1024, fp16 vs bf16 vs fp32)"; timeout 300 $py bench/fp16.py --device cuda --preset seed-000 --set batch_size=16 --steps 20 2>&1 | tee "$out/fp16.txt" | tail -16
F="--set max_iters=40 --set lr_decay_iters=40 --set warmup_iters=5 --set eval_interval=40 --set eval_iters=5 --set log_interval=10 --set compile=false --set gradient_accumulation_steps=1 --set dataset=pystdlib --set data_source=builtin:pystdlib --set val_fraction=0.01 --set device=cuda --set gpu="
for dt in float16 bfloat16; do for r in gpt2 modern; do
  echo "== headless $r dtype=$dt"; timeout 180 $py -m gpttui train seed-000 $F --set recipe=$r --set dtype=$dt --plain 2>&1 | tee "$out/train_${r}_$dt.txt" | grep -E "^iter|val|loss" | tail -5
done; done

# -- issue #18: the pilot of seed-000 against seed-000-modern on the card (20 minutes): both
# recipes x 3 learning rates, micro-batch measured per recipe, successive halving at equal
# training seconds; the table and recommendation (seed-000-pilot) land in pilot.txt. The
# data: pystdlib unless PILOT_DATASET/PILOT_SOURCE name a prepared FineWeb dataset (better:
# 20 GPU minutes are tens of epochs of pystdlib's 15 M tokens).
P="--set dataset=${PILOT_DATASET:-pystdlib} --set data_source=${PILOT_SOURCE:-builtin:pystdlib} --set val_fraction=0.01 --set device=cuda --set gpu="
echo "== pilot seed-000 vs seed-000-modern (20 min)"; timeout 1500 $py -m gpttui pilot seed-000 --minutes 20 $P 2>&1 | tee "$out/pilot.txt" | grep -vE "^\[.* of .*\] " | tail -40
