"""What a config will cost, on what: `estimate` (pure requirements maths), `cpumfu` (a
CPU's MFU by shape), `hardware` (GPU table, device detection, peaks), `target` (the
estimate's device and measured-run match), `peakstore` (a CPU's measured peak),
`hostmem` (RSS, RAM, CPU model), `report` (`--estimate`, `presets`). Torch-free at import."""
