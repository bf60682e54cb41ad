"""What is trained and how it steps: `gpt` (nanoGPT's GPT-2), `modern` (ModernGPT),
`generate` (the KV-cache sampling both share), `loss`/`chunking` (the chunked LM loss),
`optim` (Muon + AdamW), `recipes` (build a model and optimizer for a config).
Importing this package imports nothing heavy."""
