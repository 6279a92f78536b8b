"""Token vocabularies of a text tagger: words and characters → the ids of the `tokens` input.

    vocab = Vocabulary.build(train_sentences, lowercase=True, min_frequency=2, max_word_length=20)
    vocab.encode(("Visit", "Paris"))   # (2, 21) int64: word id, then 20 character ids
    vocab.save(path); Vocabulary.load(path)

A token becomes one row: column 0 its word id, columns 1..W the ids of its first W characters
(`max_word_length`), 0 after a shorter word's last character. Id 0 is padding and id 1
unknown (`[PAD]`, `[UNK]`) in both vocabularies. Both are built from the training split only:
words seen at least `min_frequency` times (looked up lower-cased with `lowercase`), every
character seen; ids follow frequency, then the string, so a build is the same every time.
Training, evaluation and serving encode through this one class, so a word is cut and looked
up the same way everywhere.

Imports numpy only: the torch-free predictor encodes requests with it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqops.errors import DataError

PAD, UNK = "[PAD]", "[UNK]"
SPECIALS = (PAD, UNK)


def _ranked(counts: Counter[str], min_count: int) -> list[str]:
    """The specials, then the entries seen at least `min_count` times, most frequent first."""
    kept = sorted(
        (item for item, n in counts.items() if n >= min_count), key=lambda k: (-counts[k], k)
    )
    return [*SPECIALS, *kept]


@dataclass(frozen=True)
class Vocabulary:
    """Word and character ids (`words[i]` has id i), how words are looked up, and W."""

    words: tuple[str, ...]
    chars: tuple[str, ...]
    lowercase: bool
    max_word_length: int
    # Lookup tables, derived (not compared or saved).
    _word_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _char_ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_word_ids", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_char_ids", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        *,
        lowercase: bool,
        min_frequency: int,
        max_word_length: int,
    ) -> Vocabulary:
        """Both vocabularies from `sentences` (tuples of tokens: the training split's)."""
        words: Counter[str] = Counter()
        chars: Counter[str] = Counter()
        for tokens in sentences:
            for token in tokens:
                words[token.lower() if lowercase else token] += 1
                chars.update(token)
        return cls(
            tuple(_ranked(words, min_frequency)),
            tuple(_ranked(chars, 1)),
            lowercase,
            max_word_length,
        )

    @property
    def width(self) -> int:
        """Columns of an encoded token: its word id and `max_word_length` character ids."""
        return 1 + self.max_word_length

    def word_id(self, token: str) -> int:
        return self._word_ids.get(token.lower() if self.lowercase else token, 1)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """`(T, 1 + W)` int64: each token's word id, then its first W characters' ids."""
        char_ids = self._char_ids
        out = np.zeros((len(tokens), self.width), dtype=np.int64)
        for t, token in enumerate(tokens):
            out[t, 0] = self.word_id(token)
            cut = token[: self.max_word_length]
            out[t, 1 : 1 + len(cut)] = [char_ids.get(c, 1) for c in cut]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": list(self.words),
            "chars": list(self.chars),
            "lowercase": self.lowercase,
            "max_word_length": self.max_word_length,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """The vocabulary `save` wrote; a malformed file is one DataError naming it."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            vocab = cls(
                tuple(raw["words"]),
                tuple(raw["chars"]),
                bool(raw["lowercase"]),
                int(raw["max_word_length"]),
            )
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a tagger vocabulary ({exc}); re-run prepare") from None
        if vocab.words[:2] != SPECIALS or vocab.chars[:2] != SPECIALS:
            raise DataError(f"{path}: ids 0 and 1 must be {list(SPECIALS)}; re-run prepare")
        return vocab
