"""Weights in and out: `checkpoint` (ckpt.pt, atomic), `hf` (Hugging Face GPT-2 tensors and
files), `pretrained` (`init_from`, `gpttui export`), `sample` (streaming text from a
checkpoint). Importing this package imports nothing heavy."""
