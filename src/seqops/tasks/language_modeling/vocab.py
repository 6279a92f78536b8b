"""Token vocabularies of a language model: characters (the default) or words → ids.

    vocab = TokenVocabulary.build([doc.text for doc in splits.train], unit="char")
    ids = vocab.encode("To be, or not")     # int64 (T,)
    vocab.decode(ids)                        # "To be, or not"
    words = TokenVocabulary.build(texts, unit="word", max_size=10000)
    vocab.save(path); TokenVocabulary.load(path)

Id 0 is padding (`[PAD]`, the filler of a document's last, partial window: never a target)
and id 1 unknown (`[UNK]`); the rest follow frequency in the training documents, then the
token itself, so a build is the same every time. Characters: every character of the training
text. Words: `WORD_PATTERN` splits text into words and single punctuation marks (whitespace,
newlines included, is dropped); the `max_size - 2` most frequent words are kept and the
others read as `[UNK]`. Text outside the vocabulary encodes to `[UNK]` in both units, and
the model and the n-gram baseline score that `[UNK]` as one token (see `ngram`).

Imports numpy only, and saves to JSON, so serving and the baseline run without torch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from seqops.errors import DataError, quote

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
SPECIALS = (PAD, UNK)

Unit = Literal["char", "word"]
UNITS: tuple[Unit, ...] = ("char", "word")

#: A word: a run of letters, digits and apostrophes inside a word; or one other visible mark.
WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str, unit: Unit) -> list[str]:
    """`text` as tokens of `unit`: its characters, or its words and punctuation marks."""
    return list(text) if unit == "char" else WORD_PATTERN.findall(text)


@dataclass(frozen=True)
class TokenVocabulary:
    """`tokens[i]` has id i; `unit` says how text is cut into tokens."""

    unit: Unit
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise DataError(f"unit must be one of {', '.join(UNITS)}, got {quote(self.unit)}")
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise DataError(f"a vocabulary starts with {', '.join(SPECIALS)}")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(
        cls, texts: Iterable[str], unit: Unit = "char", max_size: int | None = None
    ) -> TokenVocabulary:
        """The vocabulary of the training `texts`; `max_size` ids at most (specials included)."""
        if max_size is not None and max_size <= len(SPECIALS):
            raise DataError(f"vocabulary size must exceed {len(SPECIALS)}, got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text, unit))
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted(counts, key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(unit, (*SPECIALS, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """`(T,)` int64 ids of `text`'s tokens; unknown tokens are `UNK_ID`."""
        ids: dict[str, int] = self._ids  # type: ignore[attr-defined]
        return np.fromiter((ids.get(t, UNK_ID) for t in tokenize(text, self.unit)), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (words joined by spaces); padding is dropped."""
        tokens = [self.tokens[int(i)] for i in ids if int(i) != PAD_ID]
        return "".join(tokens) if self.unit == "char" else " ".join(tokens)

    def save(self, path: Path) -> None:
        data = {"unit": self.unit, "tokens": list(self.tokens)}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TokenVocabulary:
        """The vocabulary `save` wrote; a malformed file is one DataError naming it."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            tokens = raw["tokens"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise TypeError("tokens must be a list of strings")
            return cls(raw["unit"], tuple(tokens))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a language-model vocabulary ({err})") from err
