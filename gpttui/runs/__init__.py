"""The run store: a run folder is the truth. `store` (folders, status.json, listing, lock),
`writer` (metrics.jsonl and status.json from events), `records` (compact step records),
`health` (a run's state read from its files), `control` (requests to a run trained by
another process), `compare` (tokens and time to reach a loss). Torch-free."""
