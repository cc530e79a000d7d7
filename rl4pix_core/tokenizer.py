"""An offline CLIP tokenizer for the random-weight presets.

The vocabulary contains the 256 byte symbols of CLIP's byte-level BPE, each alone and with the
end-of-word suffix, plus the start and end tokens, and no merges. Text therefore splits into one
token per byte, which is all a random-weight model needs, and nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from transformers import CLIPTokenizer

MAX_LENGTH = 77
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def _byte_symbols() -> list[str]:
    """List the 256 printable symbols that byte-level BPE uses for the bytes 0..255."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in range(256)]


def byte_level_vocab() -> dict[str, int]:
    """Build the vocabulary: byte symbols, then the same with `</w>`, then the special tokens."""
    symbols = _byte_symbols()
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


@functools.lru_cache(maxsize=1)
def _tokenizer_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="rl4pix-tokenizer-"))
    (directory / "vocab.json").write_text(json.dumps(byte_level_vocab()), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return directory


def offline_clip_tokenizer() -> CLIPTokenizer:
    """Return a `CLIPTokenizer` with the byte-level vocabulary, padded to 77 tokens like CLIP's."""
    return CLIPTokenizer.from_pretrained(str(_tokenizer_dir()), model_max_length=MAX_LENGTH)


def vocab_size() -> int:
    return len(byte_level_vocab())
