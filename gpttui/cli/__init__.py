"""The command line: `main` (argparse, dispatch), `headless` (`--run`, `--resume`, `runs`,
`sample`), `printers` (progress bar and plain lines), `data` (`prepare`, `datasets`),
`serve` (the browser view). Importing this package imports nothing heavy."""
