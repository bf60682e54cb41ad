"""Datasets: sources (parquet, text, JSONL, llm.c shards, the built-in corpus) turned into
`train.bin`/`val.bin` of uint16 GPT-2 tokens plus `meta.json`, and the store that lists them.

Modules: `sources` (find and read documents), `tokenize` (worker processes), `writer`
(the deterministic split and the output files), `prepare` (the crash-safe build),
`store` (listing; whether a dataset is ready), `ensure` (`ensure_dataset`: prepared
on first use), `cli` (`gpttui prepare` / `gpttui datasets`),
`reader` (training-side batches). Importing this package imports nothing heavy.
"""
