"""A folder of plain-text documents, split by document into train / validation / test.

    corpus = Corpus.read(Path("data/raw/shakespeare"))          # every `*.txt`, sorted by name
    splits = corpus.split(val=["julius_caesar"], test=["macbeth"])
    splits = corpus.split(val=0.05, test=0.05, seed=0)           # or fractions of the documents
    splits.train                                                 # tuple of Document

A document is one file, named by its stem (`macbeth.txt` → `macbeth`), read as UTF-8. Whole
documents go to one split, so no validation or test text is ever seen in training. Named
splits take exactly the named documents; fractions take `round(f * n)` documents (at least
one) drawn by a seeded permutation, so a split is the same every time. Everything not in
validation or test is training. Bad input raises DataError naming the folder, file or name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqops.errors import DataError, quote

#: One split's documents: a list of names, or a fraction of all documents.
SplitSpec = Sequence[str] | float


@dataclass(frozen=True)
class Document:
    name: str
    text: str


@dataclass(frozen=True)
class Splits:
    train: tuple[Document, ...]
    val: tuple[Document, ...]
    test: tuple[Document, ...]

    def items(self) -> list[tuple[str, tuple[Document, ...]]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


@dataclass(frozen=True)
class Corpus:
    """The documents of one folder, in name order."""

    folder: Path
    documents: tuple[Document, ...]

    @classmethod
    def read(cls, folder: Path, pattern: str = "*.txt") -> Corpus:
        """Every file matching `pattern` in `folder` (not recursive)."""
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (expected a folder of {pattern} files)")
        paths = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not paths:
            raise DataError(f"{folder}: no {pattern} files")
        documents = []
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"
                ) from err
            if not text.strip():
                raise DataError(f"{path}: empty document (no text to model)")
            documents.append(Document(path.stem, text))
        return cls(folder, tuple(documents))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.documents)

    def split(self, *, val: SplitSpec, test: SplitSpec, seed: int = 0) -> Splits:
        """Validation and test documents by name or fraction; the rest is training."""
        rng = np.random.default_rng(seed)
        order = [self.names[i] for i in rng.permutation(len(self.documents))]
        test_names = self._pick("test", test, order, taken=set())
        val_names = self._pick("val", val, order, taken=set(test_names))
        overlap = sorted(set(val_names) & set(test_names))
        if overlap:
            raise DataError(
                f"{self.folder}: documents in both validation and test: {', '.join(overlap)}"
            )
        held_out = set(val_names) | set(test_names)
        parts = {
            "train": [d for d in self.documents if d.name not in held_out],
            "val": [d for d in self.documents if d.name in val_names],
            "test": [d for d in self.documents if d.name in test_names],
        }
        for name, docs in parts.items():
            if not docs:
                raise DataError(
                    f"{self.folder}: the {name} split has no documents ({len(self.documents)} "
                    f"in all, {len(val_names)} for validation, {len(test_names)} for test)"
                )
        return Splits(tuple(parts["train"]), tuple(parts["val"]), tuple(parts["test"]))

    def _pick(self, split: str, spec: SplitSpec, order: list[str], taken: set[str]) -> list[str]:
        if isinstance(spec, str):
            raise DataError(f"{split} documents: expected a list of names, got {quote(spec)}")
        if isinstance(spec, int | float):
            fraction = float(spec)
            if not 0.0 < fraction < 1.0:
                raise DataError(f"{split} fraction must be in (0, 1), got {quote(spec)}")
            count = max(1, round(fraction * len(order)))
            return [n for n in order if n not in taken][:count]
        names = list(spec)
        missing = [n for n in names if n not in self.names]
        if missing:
            raise DataError(
                f"{self.folder}: no document named {', '.join(map(quote, missing))} for {split} "
                f"(documents are the .txt files' stems, e.g. {quote(self.names[0])})"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(f"{split} documents named twice: {', '.join(repeated)}")
        return names
