"""Summarise a py-spy raw profile (`py-spy record --gil --threads --format raw`): which thread
held the GIL, and in what, while training ran. Used to find what the TUI costs the trainer.

  py-spy record --gil --threads --format raw -r 250 -o prof.txt -- python bench/tui.py ...
  python bench/stacks.py prof.txt [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import re


def frame_name(frame: str) -> str:
    return re.sub(r" \(.*?:\d+\)$", "", frame)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--during", default="Loop.train", help="count only samples taken while some stack contains this")
    args = p.parse_args()
    rows = []
    for line in open(args.profile, encoding="utf-8", errors="replace"):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if stack:
            rows.append((stack.split(";"), int(n)))
    total = sum(n for _, n in rows)
    by_thread: collections.Counter[str] = collections.Counter()
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frames, n in rows:
        thread = re.sub(r"\s*\(\d+\)", "", frames[0])
        names = [frame_name(f) for f in frames[1:]]
        by_thread[thread] += n
        for name in set(names):
            incl[thread][name] += n
        if names:
            leaf[thread][names[-1]] += n
    print(f"{total} GIL-holding samples")
    for thread, n in by_thread.most_common():
        print(f"\n== {thread}: {n} samples ({100 * n / total:.1f} %)")
        print("   inclusive:")
        for name, k in incl[thread].most_common(args.top):
            print(f"   {100 * k / n:5.1f} %  {name}")
        print("   self:")
        for name, k in leaf[thread].most_common(12):
            print(f"   {100 * k / n:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
