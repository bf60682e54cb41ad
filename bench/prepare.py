"""Benchmark: gpttui's end-to-end prepare vs tiktoken's raw batch throughput, same texts.

    python bench/prepare.py [--mb 210] [--workers 0]

1. Generates (once, cached in /tmp/gpttui-bench/) a FineWeb-schema parquet of at least
   `--mb` MB: English-like documents whose words are drawn Zipf-style (rank^-1) from the
   ~20k distinct words of the Python stdlib's comments and docstrings, with sentences,
   commas, paragraphs and numbers, in several row groups, so BPE behaves realistically.
2. Reference: `Encoding.encode_ordinary_batch(texts, num_threads=cores)` on the same texts
   held in memory (in chunks of 2,000 documents, results dropped).
3. gpttui: `prepare([parquet], force=True)` in a child process (read, tokenize, split,
   write, fsync, rename), timed inside the child; peak RSS from
   `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` (the largest single process of the tree).
Prints tokens/s of both, the ratio (target >= 0.85) and the peak RSS (limit 1.5 GiB).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = Path("/tmp/gpttui-bench")
ROWS_PER_GROUP = 8000


def word_list() -> tuple[np.ndarray, np.ndarray]:
    """Distinct English-ish words from stdlib comments/docstrings and Zipf probabilities."""
    from gpttui.data.sources import pystdlib_files

    counts: collections.Counter[str] = collections.Counter()
    text_re = re.compile(r"#[^\n]*|\"\"\"[\s\S]*?\"\"\"")
    for f in pystdlib_files()[:1200]:
        for chunk in text_re.findall(f.read_text(errors="replace")):
            counts.update(w.lower() for w in re.findall(r"[A-Za-z]{2,15}", chunk))
    words = np.array([w for w, _ in counts.most_common(20000)])
    p = 1.0 / (np.arange(len(words)) + 2.7)
    return words, p / p.sum()


def make_doc(rng: np.random.Generator, words: np.ndarray, cdf: np.ndarray) -> str:
    n = int(np.clip(rng.lognormal(6.2, 0.8), 30, 20000))
    w = words[np.minimum(np.searchsorted(cdf, rng.random(n)), len(words) - 1)].tolist()
    out, i = [], 0
    while i < n:
        k = int(rng.integers(6, 26))
        s = w[i : i + k]
        s[0] = s[0].capitalize()
        if len(s) > 12:
            s[k // 2 - 1] += ","
        if rng.random() < 0.1:
            s.insert(1, str(int(rng.integers(1, 3000))))
        out.append(" ".join(s) + ("." if rng.random() < 0.9 else "?"))
        i += k
        if rng.random() < 0.15:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def fineweb_table(texts: list[str]):
    """A table with FineWeb's columns (only `text` is read by prepare)."""
    import pyarrow as pa

    n = len(texts)
    return pa.table({
        "text": texts, "id": [f"<urn:uuid:{i:08d}>" for i in range(n)], "dump": ["CC-MAIN-2013-20"] * n,
        "url": [f"http://example.com/{i}" for i in range(n)], "date": ["2013-05-18T05:48:54Z"] * n,
        "file_path": ["s3://commoncrawl/x.warc.gz"] * n, "language": ["en"] * n,
        "language_score": [0.9] * n, "token_count": [0] * n,
    })


def generate(path: Path, min_mb: int) -> None:
    import pyarrow.parquet as pq

    words, p = word_list()
    cdf = np.cumsum(p)
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, fineweb_table(["x"]).schema) as w:
        while not tmp.exists() or tmp.stat().st_size < min_mb * 1e6:
            texts = [make_doc(rng, words, cdf) for _ in range(ROWS_PER_GROUP)]
            w.write_table(fineweb_table(texts), row_group_size=ROWS_PER_GROUP)
            print(f"  generated {tmp.stat().st_size / 1e6:.0f} MB", flush=True)
    os.replace(tmp, path)


def reference(path: Path, threads: int) -> tuple[float, int, int]:
    """tiktoken's encode_ordinary_batch on the same non-empty texts, held in memory."""
    import pyarrow.parquet as pq

    from gpttui.tokenizer import get_encoding

    texts = [t for t in pq.read_table(path, columns=["text"]).column(0).to_pylist() if t]
    enc = get_encoding()
    enc.encode_ordinary_batch(texts[:200], num_threads=threads)  # warm up the threads
    tokens, start = 0, time.perf_counter()
    for i in range(0, len(texts), 2000):
        tokens += sum(map(len, enc.encode_ordinary_batch(texts[i : i + 2000], num_threads=threads)))
    return time.perf_counter() - start, tokens + len(texts), sum(map(len, texts))


CHILD = """
import json, resource, sys, time
from gpttui.data.prepare import prepare
t = time.perf_counter()
info = prepare([sys.argv[1]], "bench", workers=int(sys.argv[2]), force=True)
dt = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": dt, "tokens": info.train_tokens + info.val_tokens,
                  "parent_cpu_s": me.ru_utime + me.ru_stime, "workers_cpu_s": kids.ru_utime + kids.ru_stime,
                  "self_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "workers_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run_prepare(path: Path, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GPTTUI_DATA_DIR": str(CACHE / "data")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(workers)], env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["tree_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=210, help="minimum parquet size in MB")
    ap.add_argument("--workers", type=int, default=0, help="prepare workers (0 = all cores)")
    args = ap.parse_args()
    from gpttui.data.tokenize import available_cores

    cores = available_cores()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"fineweb-like-{args.mb}mb.parquet"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate(path, args.mb)
    size = path.stat().st_size
    res = run_prepare(path, args.workers)  # first: a fork would inherit the texts' RSS below
    ref_s, ref_tokens, chars = reference(path, cores)
    ref_rate, rate = ref_tokens / ref_s, res["tokens"] / res["seconds"]
    peak = res["tree_peak_rss_kb"] * 1024
    print(f"input      {path} ({size / 1e6:.0f} MB parquet, {chars / 1e6:.0f} M chars)")
    print(f"machine    {cores} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"tiktoken   encode_ordinary_batch(num_threads={cores}): {ref_tokens:,} tokens in {ref_s:.1f} s = {ref_rate / 1e6:.2f} M tok/s")
    print(f"gpttui     prepare (end to end): {res['tokens']:,} tokens in {res['seconds']:.1f} s = {rate / 1e6:.2f} M tok/s")
    print(f"           CPU: parent {res['parent_cpu_s']:.1f} s (read, split, write), workers {res['workers_cpu_s']:.1f} s")
    print(f"ratio      {rate / ref_rate:.3f} (target >= 0.85)")
    print(f"peak RSS   {peak / 2**20:.0f} MiB (largest process; parent {res['self_rss_kb'] / 1024:.0f} MiB, "
          f"workers {res['workers_rss_kb'] / 1024:.0f} MiB; limit 1536 MiB)")
    assert res["tokens"] == ref_tokens, "token counts differ from tiktoken's"


if __name__ == "__main__":
    main()
