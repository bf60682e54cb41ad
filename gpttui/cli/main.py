"""Command line: `gpttui` (the TUI), `gpttui --run PRESET` (headless) and subcommands.

Start-up stays light: this module imports neither torch nor textual; each command's
module is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gpttui import __version__
from gpttui.errors import GpttuiError

# command -> "module:function"; each takes the parsed args and returns an exit code.
HANDLERS = {
    "tui": "gpttui.tui.app:run_app",
    "run": "gpttui.cli.headless:cmd_run",
    "resume": "gpttui.cli.headless:cmd_resume",
    "estimate": "gpttui.plan.report:cmd_estimate",
    "presets": "gpttui.plan.report:cmd_presets",
    "prepare": "gpttui.cli.data:cmd_prepare",
    "datasets": "gpttui.cli.data:cmd_datasets",
    "runs": "gpttui.cli.headless:cmd_runs",
    "sample": "gpttui.cli.headless:cmd_sample",
    "export": "gpttui.cli.export:cmd_export",
    "serve": "gpttui.cli.serve:cmd_serve",
    "eval": "gpttui.cli.eval:cmd_eval",
    "pilot": "gpttui.cli.pilot:cmd_pilot",
}

EPILOG = """\
examples:
  gpttui                              open the terminal UI
  gpttui --run demo                   train the demo preset headless (CPU, minutes)
  gpttui --estimate seed-000 --gpu "RTX 4070"
  gpttui prepare shards/*.parquet --name fineweb-000
  gpttui pilot demo --minutes 6       short trials of recipes and learning rates; saves demo-pilot
  torchrun --nproc_per_node=8 -m gpttui train gpt2-124m
      (under torchrun use `train PRESET`: torchrun's own parser takes `--run` for its `--run-path`)
"""


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (type-checked); repeatable")
    p.add_argument("--gpu", metavar="NAME", help="GPU to estimate for, e.g. 'RTX 4070' (default: detected)")
    p.add_argument("--no-memory-check", action="store_true",
                   help="with --run/--resume: start even when the estimate says it cannot fit in memory")


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    from gpttui.cli.eval import add_parser  # no torch: the module imports it only when run

    add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpttui",
        description="Train GPT-2-class language models on one GPU (or several) from a terminal UI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"gpttui {__version__}")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--run", metavar="PRESET", help="train PRESET headless (a name, .toml or nanoGPT .py)")
    mode.add_argument("--resume", metavar="RUN", help="resume the run RUN (id or folder) headless")
    mode.add_argument("--estimate", metavar="PRESET", help="print the requirements estimate of PRESET")
    _add_config_args(p)
    p.add_argument("--name", help="with --run: the run's name (default: <time>-<preset>)")
    p.add_argument("--json", action="store_true", help="machine-readable output (--estimate, lists)")
    p.add_argument("--plain", action="store_true", help="plain log lines even on a terminal")

    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sp = sub.add_parser("train", help="train PRESET headless (same as --run; use this under torchrun)")
    sp.add_argument("preset", metavar="PRESET")
    _add_config_args(sp)
    sp.add_argument("--name", help="the run's name (default: <time>-<preset>)")
    sp.add_argument("--plain", action="store_true", help="plain log lines even on a terminal")

    sp = sub.add_parser("pilot", help="short real trials of candidate configs on this device; saves the best as PRESET-pilot")
    sp.add_argument("preset", metavar="PRESET")
    sp.add_argument("--minutes", type=float, default=30.0, help="the whole pilot's time budget (default: 30)")
    sp.add_argument("--try", dest="tries", action="append", default=[], metavar="KEY=V1,V2",
                    help="candidates: the preset plus one per value (instead of recipes x learning rates); repeatable")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="change the preset for every candidate (dataset, device, ...); repeatable")

    sp = sub.add_parser("presets", help="list built-in and user presets")
    sp.add_argument("--json", action="store_true", help="one JSON object per preset instead of a table")

    sp = sub.add_parser("prepare", help="tokenize parquet/text/JSONL sources into a dataset")
    sp.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders, globs or builtin:pystdlib")
    sp.add_argument("--name", required=True, help="dataset name")
    sp.add_argument("--text-column", default="text", help="parquet column / JSONL field (default: text)")
    sp.add_argument("--val-fraction", type=float, default=0.0005, help="fraction of documents for val")
    sp.add_argument("--workers", type=int, default=0, help="tokenizer processes (default: all cores)")
    sp.add_argument("--force", action="store_true", help="prepare again even if the sources are unchanged")
    sp.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")

    sp = sub.add_parser("datasets", help="list prepared datasets")
    sp.add_argument("--json", action="store_true", help="JSON instead of a table")

    sp = sub.add_parser("runs", help="list runs in the data dir")
    sp.add_argument("--json", action="store_true", help="JSON instead of a table")

    sp = sub.add_parser("sample", help="generate text from a run's checkpoint (latest, or --checkpoint best)")
    sp.add_argument("run", metavar="RUN")
    sp.add_argument("--prompt", default="\n", help="text the model continues (default: a newline)")
    sp.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default: 200)")
    sp.add_argument("--temperature", type=float, default=0.8,
                    help="sampling temperature; lower is more predictable (default: 0.8)")
    sp.add_argument("--top-k", type=int, default=200,
                    help="sample among the k most likely tokens (default: 200)")
    sp.add_argument("--seed", type=int, default=1337, help="random seed: the same seed gives the same text (default: 1337)")
    sp.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    sp.add_argument("--checkpoint", default="latest", metavar="WHICH",
                    help="latest (ckpt.pt, default: where training stands and resume continues), "
                         "best (best.pt: the lowest val loss so far) or a .pt file")

    sp = sub.add_parser("export", help="write a run's model for other tools (--format hf: Hugging Face GPT-2)")
    sp.add_argument("run", metavar="RUN", help="run id or folder, or a ckpt.pt")
    sp.add_argument("dir", metavar="DIR", help="folder to write")
    sp.add_argument("--format", default="hf", help="hf: model.safetensors + config.json + GPT-2 tokenizer")
    sp.add_argument("--force", action="store_true", help="overwrite the files of an earlier export in DIR")

    _add_eval_parser(sub)

    sp = sub.add_parser("serve", help="serve the UI to a browser on this machine (reach it through ssh -L)")
    sp.add_argument("--port", type=int, default=8000, help="port on localhost (default: 8000)")
    return p


def _command(args: argparse.Namespace) -> str:
    if args.command == "train":
        args.run = args.preset
        return "run"
    if args.command:
        return args.command
    if args.run:
        return "run"
    if args.resume:
        return "resume"
    if args.estimate:
        return "estimate"
    return "tui"


# commands that write to the data dir (checked writable first) and those that only read it
_WRITES = {"run", "resume", "prepare", "pilot"}
_READS = {"runs", "datasets", "sample", "tui", "eval"}


def dispatch(args: argparse.Namespace) -> int:
    command = _command(args)
    if command in _WRITES or command in _READS:
        from gpttui.faults import check_data_dir

        check_data_dir(write=command in _WRITES)
    module, func = HANDLERS[command].split(":")
    return int(getattr(importlib.import_module(module), func)(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `torchrun ... -m gpttui -- --run X` passes the `--` through
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except GpttuiError as e:
        print(f"gpttui: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("gpttui: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permissions, read-only: the user's to fix, not a bug
        from gpttui.faults import is_user_os_error, os_error

        if not is_user_os_error(e):
            raise
        print(f"gpttui: error: {os_error(e, e.filename or 'a file')}", file=sys.stderr)
        return 2
