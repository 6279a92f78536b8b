"""CoNLL reading for sequence labeling: the format's tolerated variants, one clear error per
kind of bad input (naming file and line), predict-time inputs, and the tag schemes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from seqops.errors import DataError
from seqops.tasks.sequence_labeling.conll import (
    Sentence,
    Span,
    entities,
    read_conll,
    read_text,
    read_tokens,
    spans_to_tags,
    tag_scheme,
    to_bio,
)

REPO = Path(__file__).resolve().parents[2]
WNUT17 = REPO / "data" / "raw" / "wnut17"

EXPECTED = [
    Sentence(("Empire", "State", "Building", "="), ("B-location", "I-location", "I-location", "O")),
    Sentence(("@paulwalk", "hi"), ("O", "O")),
]


def write(tmp_path: Path, content: str | bytes, name: str = "data.conll") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content",
    [
        "Empire\tB-location\nState\tI-location\nBuilding\tI-location\n=\tO\n\n@paulwalk\tO\nhi\tO\n",
        # no trailing newline; several blank lines; a trailing blank line
        "Empire\tB-location\nState\tI-location\nBuilding\tI-location\n=\tO\n\n\n\n"
        "@paulwalk\tO\nhi\tO",
        # WNUT-17's train file: a lone tab separates sentences
        "Empire\tB-location\nState\tI-location\nBuilding\tI-location\n=\tO\n\t\n"
        "@paulwalk\tO\nhi\tO\n\t\n",
        # CoNLL-2003's document markers, Windows line ends, a byte-order mark
        "\ufeff-DOCSTART- -X- -X- O\r\n\r\nEmpire\tB-location\r\nState\tI-location\r\n"
        "Building\tI-location\r\n=\tO\r\n-DOCSTART-\tO\r\n@paulwalk\tO\r\nhi\tO\r\n\r\n",
    ],
    ids=["plain", "untidy-blank-lines", "tab-separator", "docstart-crlf-bom"],
)
def test_tolerated_variants_read_the_same_sentences(tmp_path: Path, content: str) -> None:
    assert read_conll(write(tmp_path, content)) == EXPECTED


def test_a_token_keeps_characters_that_str_splitlines_would_split_on(tmp_path: Path) -> None:
    sentences = read_conll(write(tmp_path, "a\u2028b\tO\nc\x85d\tB-person\n"))
    assert sentences == [Sentence(("a\u2028b", "c\x85d"), ("O", "B-person"))]


def test_the_shipped_wnut17_copy_matches_its_readme() -> None:
    """The counts in data/raw/wnut17/README.md: the copy is whole and the reader splits it
    into the published sentences (train separates them with lone tabs)."""
    expected = {
        "train": (3394, 62730, 1975),
        "dev": (1009, 15733, 836),
        "test": (1287, 23394, 1079),
    }
    for split, (n_sentences, n_tokens, n_entities) in expected.items():
        sentences = read_conll(WNUT17 / f"{split}.conll")
        assert len(sentences) == n_sentences
        assert sum(len(s.tokens) for s in sentences) == n_tokens
        assert sum(len(entities(s.tags)) for s in sentences) == n_entities
        assert tag_scheme(s.tags for s in sentences) == "BIO"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"data.conll: no sentences"),
        ("\n\t\n-DOCSTART- -X- -X- O\n\n", r"data.conll: no sentences"),
        ("a\tO\nb O\n", r"data.conll: line 2 has no tab between token and tag \('b O'"),
        ("a\tO\nb\tO\tNN\n", r"data.conll: line 2 has 3 tab-separated columns, expected 2"),
        ("a\tO\n\nb\tB-\n", r"data.conll: line 3: tag 'B-' is not O, B-<type>, I-<type>"),
        ("a\tX-person\n", r"line 1: tag 'X-person' is not O"),
        ("a\tb-person\n", r"line 1: tag 'b-person' is not O"),
        ("a\tB\n", r"line 1: tag 'B' is not O"),
        ("a\t\n", r"line 1: tag '' is not O"),
        (" \tO\n", r"data.conll: line 1 has an empty token"),
        (b"a\tO\n\nb\xe9\tO\n", r"data.conll: line 3 is not UTF-8 \(byte 6: 0xe9\)"),
    ],
)
def test_bad_input_is_one_data_error_naming_file_and_line(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_conll(write(tmp_path, content))


@pytest.mark.parametrize("reader", [read_conll, read_tokens, read_text])
def test_a_missing_file_is_a_data_error(tmp_path: Path, reader) -> None:
    with pytest.raises(DataError, match=r"nope.conll: file does not exist"):
        reader(tmp_path / "nope.conll")


def test_untagged_conll_reads_tokens_and_ignores_a_tag_column(tmp_path: Path) -> None:
    untagged = write(tmp_path, "Empire\nState\nBuilding\n=\n\n@paulwalk\nhi\n", "in.conll")
    tagged = write(tmp_path, "Empire\tB-location\nState\tI-location\nBuilding\tI-location\n=\tO\n"
                   "\n@paulwalk\tO\nhi\tO\n")  # fmt: skip
    tokens = [s.tokens for s in EXPECTED]
    assert read_tokens(untagged) == tokens
    assert read_tokens(tagged) == tokens
    with pytest.raises(DataError, match=r"in.conll: line 2 has 3 tab-separated columns"):
        read_tokens(write(tmp_path, "a\nb\tO\tNN\n", "in.conll"))
    with pytest.raises(DataError, match=r"in.conll: no sentences"):
        read_tokens(write(tmp_path, "\n\n", "in.conll"))


def test_plain_text_is_one_whitespace_tokenised_sentence_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "Empire State  Building =\n\n   \n@paulwalk\thi", "in.txt")
    assert read_text(path) == [s.tokens for s in EXPECTED]
    with pytest.raises(DataError, match=r"in.txt: no sentences"):
        read_text(write(tmp_path, " \n\n", "in.txt"))
    with pytest.raises(DataError, match=r"in.txt: line 2 is not UTF-8"):
        read_text(write(tmp_path, b"ok\n\xff\n", "in.txt"))


def test_the_scheme_is_bioes_exactly_when_an_e_or_s_tag_appears() -> None:
    assert tag_scheme([["O", "B-x", "I-x"], ["B-y"]]) == "BIO"
    assert tag_scheme([["O", "B-x", "E-x"], ["O"]]) == "BIOES"
    assert tag_scheme([["O"], ["S-y"]]) == "BIOES"


def test_entities_follow_conlleval_for_stray_i_and_type_changes() -> None:
    # A stray I- opens an entity (IOB1, or a tagger's raw output); a type change closes one;
    # B- after I- of the same type starts a new one.
    tags = ["I-person", "I-person", "O", "I-loc", "B-loc", "I-org", "O", "B-x", "I-x"]
    assert entities(tags) == [
        Span("person", 0, 2),
        Span("loc", 3, 4),
        Span("loc", 4, 5),
        Span("org", 5, 6),
        Span("x", 7, 9),
    ]
    assert to_bio(tags) == ["B-person", "I-person", "O", "B-loc", "B-loc", "B-org", "O",
                            "B-x", "I-x"]  # fmt: skip


def test_bioes_and_bio_spell_the_same_entities() -> None:
    spans = [Span("person", 0, 2), Span("loc", 2, 3), Span("loc", 4, 7)]
    bio = spans_to_tags(spans, 8, "BIO")
    bioes = spans_to_tags(spans, 8, "BIOES")
    assert bio == ["B-person", "I-person", "B-loc", "O", "B-loc", "I-loc", "I-loc", "O"]
    assert bioes == ["B-person", "E-person", "S-loc", "O", "B-loc", "I-loc", "E-loc", "O"]
    assert entities(bio) == entities(bioes) == spans
    assert to_bio(bioes) == bio


def test_to_bio_keeps_the_entities_of_any_tag_sequence() -> None:
    """Whatever order the tags come in (valid or not in either scheme), `to_bio` writes the
    same entities in strict IOB2 and is idempotent."""
    rng = random.Random(0)
    alphabet = ["O", *(f"{p}-{t}" for p in "BIES" for t in ("a", "b"))]
    for _ in range(500):
        tags = [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]
        bio = to_bio(tags)
        assert entities(bio) == entities(tags)
        assert to_bio(bio) == bio
        assert all(not tag.startswith(("E-", "S-")) for tag in bio)
        assert all(
            not tag.startswith("I-") or prev in (f"B-{tag[2:]}", tag)
            for prev, tag in zip(["O", *bio], bio, strict=False)
        )
