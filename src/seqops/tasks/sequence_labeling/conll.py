"""CoNLL-style token files and their tag schemes: tagged sentences for training and scoring,
untagged tokens for prediction, and the entities a tag sequence spells.

    from seqops.tasks.sequence_labeling.conll import read_conll, read_tokens, read_text
    sentences = read_conll(Path("data/raw/wnut17/train.conll"))  # [Sentence(tokens, tags)]
    tokens = read_tokens(Path("tweets.conll"))  # [('token', ...)], a tag column is ignored
    tokens = read_untagged(Path("tweets.conll"))  # the same, a tag column refused
    tokens = read_text(Path("tweets.txt"))      # one whitespace-tokenised sentence per line
    entities(["B-person", "I-person", "O"])     # [Span("person", 0, 2)]

File format: UTF-8 (a byte-order mark is dropped), one token per line as `token<TAB>tag`, a
blank line between sentences. A line of whitespace only (WNUT-17's train file separates
sentences with a lone tab) and a `-DOCSTART-` line (CoNLL-2003's document marker) also end a
sentence; a trailing blank line is fine. Whatever breaks this raises `DataError` naming the
file and the line.

Tags: `O` or `B-`, `I-`, `E-`, `S-` and a type (BIO or BIOES; `tag_scheme` tells which). The
reader checks each tag's form, not the order of the tags: a stray `I-x` (after `O` or after
another type) is accepted and read, as the CoNLL evaluation script reads it, as the start of
an `x` entity. Refusing it would reject IOB1 files (CoNLL-2003 as released) and a tagger's
raw output, both of which conlleval scores; `to_bio` rewrites any sequence as strict IOB2
(every entity opens with `B-`) without changing its entities. Chunking follows conlleval for
BIO, with seqeval's extension for BIOES, so the entities are the ones the scores count.

Imports neither torch nor onnx: the torch-free predictor reads its input with this module.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from seqops.errors import DataError, quote

Scheme = Literal["BIO", "BIOES"]

#: A tag: `O`, or a BIOES prefix, a hyphen and a type without whitespace.
TAG = re.compile(r"O|[BIES]-\S+")

#: CoNLL-2003's document separator (`-DOCSTART- -X- -X- O`): a sentence boundary here.
DOCSTART = "-DOCSTART-"

_EXPECTED = "expected 'token<TAB>tag', a blank line between sentences"


class Sentence(NamedTuple):
    """One tagged sentence: as many tags as tokens."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]


class Span(NamedTuple):
    """One entity: its type and the tokens `start` to `stop - 1` of its sentence."""

    type: str
    start: int
    stop: int


def read_conll(path: Path) -> list[Sentence]:
    """The sentences of a tagged CoNLL file (`token<TAB>tag` lines), each tag checked."""
    sentences = []
    for block in _blocks(path):
        tokens, tags = [], []
        for number, fields in block:
            if len(fields) == 1:
                raise DataError(
                    f"{path}: line {number} has no tab between token and tag "
                    f"({quote(fields[0])}; {_EXPECTED})"
                )
            if len(fields) > 2:
                raise DataError(
                    f"{path}: line {number} has {len(fields)} tab-separated columns, expected 2 "
                    f"({quote(chr(9).join(fields))}; {_EXPECTED})"
                )
            token, tag = fields[0].strip(), fields[1].strip()
            if not token:
                raise DataError(f"{path}: line {number} has an empty token ({_EXPECTED})")
            if not TAG.fullmatch(tag):
                raise DataError(
                    f"{path}: line {number}: tag {quote(tag)} is not O, B-<type>, I-<type>, "
                    "E-<type> or S-<type>"
                )
            tokens.append(token)
            tags.append(tag)
        sentences.append(Sentence(tuple(tokens), tuple(tags)))
    if not sentences:
        raise DataError(f"{path}: no sentences ({_EXPECTED})")
    return sentences


def read_tokens(path: Path) -> list[tuple[str, ...]]:
    """The sentences of an untagged CoNLL file: one token per line, a blank line between
    sentences. A second column is ignored, so a tagged file (a test split) can be tagged
    again; a third is an error."""
    sentences = []
    for block in _blocks(path):
        tokens = []
        for number, fields in block:
            if len(fields) > 2:
                raise DataError(
                    f"{path}: line {number} has {len(fields)} tab-separated columns, expected "
                    f"a token (and optionally its tag): {quote(chr(9).join(fields))}"
                )
            token = fields[0].strip()
            if not token:
                raise DataError(f"{path}: line {number} has an empty token before its tab")
            tokens.append(token)
        sentences.append(tuple(tokens))
    if not sentences:
        raise DataError(f"{path}: no sentences (expected one token per line)")
    return sentences


def read_untagged(path: Path) -> list[tuple[str, ...]]:
    """The sentences of a CoNLL file to tag: one token per line, a blank line between
    sentences, and no tag column (a tagged file is refused naming its first tagged line,
    so gold tags are never taken for input by mistake)."""
    for block in _blocks(path):
        for number, fields in block:
            if len(fields) > 1 and any(f.strip() for f in fields[1:]):
                raise DataError(
                    f"{path}: line {number} has a tag column ({quote(chr(9).join(fields))}); "
                    "predict takes tokens only, one per line: drop the tags (`cut -f1`)"
                )
    return read_tokens(path)


def read_text(path: Path) -> list[tuple[str, ...]]:
    """The sentences of a plain-text file: one per line, split on whitespace; blank lines
    are skipped."""
    sentences = [tuple(line.split()) for _, line in _lines(path) if line.strip()]
    if not sentences:
        raise DataError(f"{path}: no sentences (expected one sentence per line)")
    return sentences


def tag_scheme(tag_sequences: Iterable[Sequence[str]]) -> Scheme:
    """BIOES when any tag is `E-` or `S-`, else BIO (a BIOES file always has one: each of its
    entities ends with `E-` or is an `S-`)."""
    for tags in tag_sequences:
        if any(tag[:2] in ("E-", "S-") for tag in tags):
            return "BIOES"
    return "BIO"


def entities(tags: Sequence[str]) -> list[Span]:
    """The entities of one sentence's tags, in order, as conlleval chunks them (seqeval's
    default mode): a stray `I-x` opens an entity, a change of type closes one."""
    # Imported here: seqeval imports scikit-learn (a second), which the predictor reading its
    # input with this module never needs.
    from seqeval.metrics.sequence_labeling import get_entities

    return [Span(kind, start, end + 1) for kind, start, end in get_entities(list(tags))]


def spans_to_tags(spans: Iterable[Span], length: int, scheme: Scheme) -> list[str]:
    """The tags of a `length`-token sentence holding `spans` (which must not overlap), in
    strict IOB2 (`BIO`) or `BIOES`."""
    tags = ["O"] * length
    for kind, start, stop in spans:
        if scheme == "BIOES" and stop - start == 1:
            tags[start] = f"S-{kind}"
            continue
        tags[start] = f"B-{kind}"
        tags[start + 1 : stop] = [f"I-{kind}"] * (stop - start - 1)
        if scheme == "BIOES":
            tags[stop - 1] = f"E-{kind}"
    return tags


def to_bio(tags: Sequence[str]) -> list[str]:
    """Any valid-form tag sequence (BIO, IOB1, BIOES, a tagger's stray `I-`) as strict IOB2
    with the same entities: what a BIO model trains on and what scores compare."""
    return spans_to_tags(entities(tags), len(tags), "BIO")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 file, without line ends. Splits on `\\n` only:
    `str.splitlines` would also split inside a token holding U+2028 or U+0085, characters
    pasted social-media text can hold."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start  # in the file, as a hex editor shows it
        bad_line = data.count(b"\n", 0, offset) + 1
        raise DataError(
            f"{path}: line {bad_line} is not UTF-8 "
            f"(byte {offset}: {data[offset]:#04x}); save the file as UTF-8"
        ) from None
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _blocks(path: Path) -> Iterator[list[tuple[int, list[str]]]]:
    """The sentences of a CoNLL file as lists of (line number, tab-separated fields):
    blank and whitespace-only lines and `-DOCSTART-` lines separate them."""
    block: list[tuple[int, list[str]]] = []
    for number, line in _lines(path):
        if not line.strip() or line.split(maxsplit=1)[0] == DOCSTART:
            if block:
                yield block
            block = []
            continue
        block.append((number, line.split("\t")))
    if block:
        yield block
