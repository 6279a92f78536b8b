"""A split's documents as encoded token streams on disk (`data/processed/<split>.streams.npz`),
and their blocks: what training, evaluation and the release read (numpy only).

    save_streams(path, names, ids)        # ids: one int64 array per document
    names, ids = load_streams(path)
    spans = block_spans(len(doc_ids), block_tokens)   # [(0, 256), (256, 512), ...]

A block is `block_tokens` consecutive tokens of one document (the last one shorter); the
tokens a block scores are its own, bar a document's first token, which is context only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqops.errors import DataError


def save_streams(path: Path, names: list[str], ids: list[np.ndarray]) -> None:
    lengths = np.array([len(d) for d in ids], dtype=np.int64)
    values = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
    with open(path, "wb") as fh:
        np.savez(fh, names=np.array(names, dtype=str), values=values, lengths=lengths)


def load_streams(path: Path) -> tuple[list[str], list[np.ndarray]]:
    if not path.is_file():
        raise DataError(f"{path}: not found (run `seqops prepare`)")
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        ids = np.split(data["values"], np.cumsum(data["lengths"])[:-1])
    return names, [np.asarray(d, dtype=np.int64) for d in ids]


def block_spans(n_tokens: int, block_tokens: int) -> list[tuple[int, int]]:
    """`(start, stop)` token ranges of a document's blocks, in order."""
    return [(a, min(a + block_tokens, n_tokens)) for a in range(0, n_tokens, block_tokens)]
