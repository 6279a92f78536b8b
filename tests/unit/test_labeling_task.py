"""The text `sequence_labeling` task's seams on a tiny CoNLL corpus: prepare (vocabularies from
train only, packed characters, per-step labels on disk and in batches), the request codec and
its refusals, the release's entity scorer and paired test, and the served path (raw sentences
through vocab.json, ONNX and the numpy Viterbi) against the evaluated network."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.config import DataConfig, LabelingConfig
from seqops.contracts import Bundle, OnnxIO
from seqops.data.sequences import SequenceSet
from seqops.errors import DataError
from seqops.layout import Layout, split_file
from seqops.tasks import read_data_report
from seqops.tasks.base import Check
from seqops.tasks.parts.prepare import get_prepare
from seqops.tasks.parts.release import baseline_check, get_release
from seqops.tasks.parts.serve import get_serve
from seqops.tasks.parts.train import get_train
from seqops.tasks.sequence_labeling.codec import TaggerCodec, sentence_frame
from seqops.tasks.sequence_labeling.meta import VOCAB_FILE, LabelingMeta
from seqops.tasks.sequence_labeling.release import (
    EntityScorer,
    counts_array,
    entity_f1,
    paired_entity_scores,
)
from seqops.tasks.sequence_labeling.reports import TextLabelingMetrics, TextLabelingReport
from seqops.tasks.sequence_labeling.vocab import Vocabulary

TRAIN = [
    [("Visit", "O"), ("Paris", "B-location"), ("today", "O")],
    [("John", "B-person"), ("Smith", "I-person"), ("visits", "O"), ("Paris", "B-location")],
    [("paris", "B-location"), ("is", "O"), ("big", "O")],
    [("John", "B-person"), ("is", "O"), ("here", "O")],
]
VAL = [[("Visit", "O"), ("John", "B-person")]]
TEST = [
    [("Extraordinarily", "O"), ("John", "B-person"), ("Zürich", "B-location")],
    [("is", "O")],
]


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n")
    return path


def labeling_data(root: Path, width: int = 6) -> DataConfig:
    """The tiny corpus as a `data` section (three CoNLL files under `root`)."""
    return DataConfig(
        task="sequence_labeling",
        dataset=None,
        path=write_conll(root / "train.conll", TRAIN),
        val_path=write_conll(root / "dev.conll", VAL),
        test_path=write_conll(root / "test.conll", TEST),
        labeling=LabelingConfig(lowercase=True, min_frequency=2, max_word_length=width),
    )


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seqops.stages.prepare import write

    root = tmp_path_factory.mktemp("labeling")
    task = get_prepare("sequence_labeling")
    layout = Layout(root)
    write(task.prepare(labeling_data(root), seed=0), layout)
    return layout.processed


def meta_of(processed: Path) -> LabelingMeta:
    from seqops.tasks import read_meta

    meta = read_meta(processed / "preprocessing.json")
    assert isinstance(meta, LabelingMeta)
    return meta


# -- prepare ----------------------------------------------------------------------------------


def test_vocabularies_come_from_the_training_split_only(processed: Path) -> None:
    vocab = Vocabulary.load(processed / VOCAB_FILE)
    # lower-cased, seen at least twice in train: john (2), paris (3), is (2), visit... (1 + 0)
    assert vocab.words == ("[PAD]", "[UNK]", "paris", "is", "john")
    assert "ü" not in vocab.chars and "Z" not in vocab.chars  # test-only characters
    test = SequenceSet.load(processed / split_file("test"))
    extraordinarily, john, zurich = test.sequences[0]
    assert extraordinarily[0] == 1 and zurich[0] == 1  # [UNK] words
    assert john[0] == vocab.words.index("john")
    # packed: word id, then the first 6 characters; 0 after a shorter word, 1 unseen chars
    assert test.sequences[0].shape == (3, 7) and test.sequences[0].dtype == np.int64
    assert [vocab.chars[i] for i in john[1:5]] == list("John") and list(john[5:]) == [0, 0]
    assert zurich[2] == 1 and zurich[1] == 1 and zurich[3] == vocab.chars.index("r")
    assert np.count_nonzero(extraordinarily[1:]) == 6  # cut to max_word_length


def test_tags_are_stored_one_per_token_and_batched_with_the_ignore_index(processed: Path) -> None:
    from seqops.data.batches import IGNORE_INDEX, loader

    meta = meta_of(processed)
    assert meta.label_names == ["O", "B-location", "B-person", "I-person"]
    assert meta.feature_names[:2] == ["word", "char_1"] and len(meta.feature_names) == 7
    test = SequenceSet.load(processed / split_file("test"))
    assert test.per_step and [list(t) for t in test.labels] == [[0, 2, 1], [0]]
    with np.load(processed / split_file("test")) as npz:
        assert sorted(npz.files) == ["lengths", "step_labels", "values"]  # no pickle, no labels
    x, lengths, y = next(iter(loader(test, 8, shuffle=False, per_step=True)))
    assert x.shape == (2, 3, 7) and lengths.tolist() == [3, 1]
    assert y.tolist() == [[0, 2, 1], [0, IGNORE_INDEX, IGNORE_INDEX]]
    assert x[1, 1:].abs().sum() == 0  # padded steps: word and characters 0


def test_prepare_reports_tags_entities_and_unknown_words(processed: Path) -> None:
    report = read_data_report(processed.parent.parent / "reports" / "data.json")
    assert isinstance(report, TextLabelingReport) and report.input == "tokens"
    assert report.n_classes == 4 and report.vocab_size == 5
    assert report.tag_counts is not None and report.tag_counts["test"] == {
        "B-location": 1,
        "B-person": 1,
        "O": 2,
    }
    assert report.entity_counts is not None and report.entity_counts["train"] == {
        "location": 3,
        "person": 2,
    }
    assert report.test_unknown_token_rate == pytest.approx(2 / 4)


def test_a_tag_train_lacks_is_refused_naming_the_file(tmp_path: Path) -> None:
    data = labeling_data(tmp_path)
    write_conll(Path(data.test_path or ""), [[("Acme", "B-corporation")]])
    with pytest.raises(DataError, match=r"test\.conll: tag\(s\) \['B-corporation'\] never appear"):
        get_prepare("sequence_labeling").prepare(data, seed=0)


def test_the_config_wants_three_conll_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.test_path"):
        DataConfig(task="sequence_labeling", dataset=None, path=tmp_path / "t.conll",
                   val_path=tmp_path / "d.conll")  # fmt: skip


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"char_filters": 0}, "model.char_filters = 0"),
        ({"word_shape": "yes"}, "model.word_shape = 'yes'"),
        ({"word_shap": True}, "model.word_shap = True: unknown key"),
    ],
)
def test_bad_tagger_model_keys_are_refused_naming_the_key(model: dict, message: str) -> None:
    from seqops.config import parse_config
    from seqops.errors import ConfigError
    from tests.conftest import merge

    data = {"task": "sequence_labeling", "dataset": None, "path": "t.conll",
            "val_path": "d.conll", "test_path": "e.conll"}  # fmt: skip
    base = {"data": data, "release": {"metric": "test/entity_f1"}}
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(merge(base, {"model": model}))


def test_text_objectives_log_entity_f1_and_word_shape_reads_the_char_vocabulary(
    processed: Path,
) -> None:
    from seqops.config import ModelConfig, TrainConfig

    task, meta = get_train("sequence_labeling"), meta_of(processed)
    train = TrainConfig(monitor="val/entity_f1")
    for crf in (True, False):
        spec = task.objective(meta, train, ModelConfig(crf=crf))
        assert spec["tag_names"] == meta.label_names
    plain = task.network_args(meta, processed, ModelConfig())
    assert plain["shape_chars"] is None and plain["char_filters"] == 30
    shaped = task.network_args(meta, processed, ModelConfig(word_shape=True, char_filters=7))
    chars = Vocabulary.load(processed / VOCAB_FILE).chars
    assert shaped["shape_chars"] == list(chars) and shaped["char_filters"] == 7


# -- serving ----------------------------------------------------------------------------------


def bundle_of(processed: Path, max_length: int = 5) -> Bundle:
    return Bundle(
        data=meta_of(processed),
        id_column="id",
        time_column="time",
        max_length=max_length,
        onnx=OnnxIO(
            inputs=["tokens", "lengths"],
            outputs=["logits"],
            dynamic_axes={"tokens": {"0": "batch", "1": "time"}},
        ),
    )


def word_is_tag(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A stand-in for the served graph: each token's tag index is its word id mod 4."""
    real = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return np.where(real, x[..., 0] % 4, -1)


def test_the_codec_answers_one_row_per_token(processed: Path) -> None:
    codec = TaggerCodec(bundle_of(processed), processed / VOCAB_FILE)
    frame = pd.DataFrame({"text": ["John visits  Paris", "is"], "id": ["a", "b"]})
    out = codec.predict_frame(frame, word_is_tag, "request")
    assert list(out.columns) == ["id", "token_index", "token", "tag"]
    # word ids: john 4, visits [UNK] 1, paris 2, is 3 → tags 0, 1, 2, 3
    assert out.values.tolist() == [
        ["a", 0, "John", "O"],
        ["a", 1, "visits", "B-location"],
        ["a", 2, "Paris", "B-person"],
        ["b", 0, "is", "I-person"],
    ]
    assert codec.signature().outputs.input_names() == ["id", "token_index", "token", "tag"]


def test_a_txt_and_an_untagged_conll_file_read_as_the_same_sentences(
    processed: Path, tmp_path: Path
) -> None:
    codec = TaggerCodec(bundle_of(processed), processed / VOCAB_FILE)
    (tmp_path / "q.txt").write_text("John visits Paris\n\nis\n")
    (tmp_path / "q.conll").write_text("John\nvisits\nParis\n\nis\n")
    txt, conll = codec.read(tmp_path / "q.txt"), codec.read(tmp_path / "q.conll")
    assert txt.equals(conll) and txt["text"].tolist() == ["John visits Paris", "is"]


BAD_REQUESTS = {
    "no rows": (pd.DataFrame({"text": []}), "no rows"),
    "no text column": (pd.DataFrame({"sentence": ["a b"]}), "missing column 'text'"),
    "not text": (pd.DataFrame({"text": ["a b", 3.5]}), "must hold text; row 1 holds 3.5"),
    "empty sentence": (pd.DataFrame({"text": ["a", "   "]}), "'text' is empty at row 1"),
    "too long": (pd.DataFrame({"text": ["a b c d e f"]}), "row 0 has 6 tokens; the model accepts"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_is_one_data_error_naming_the_row(processed: Path, case: str) -> None:
    codec = TaggerCodec(bundle_of(processed), processed / VOCAB_FILE)
    frame, message = BAD_REQUESTS[case]
    with pytest.raises(DataError, match=r"^request: ") as err:
        codec.predict_frame(frame, word_is_tag, "request")
    assert message in str(err.value)


def test_a_conll_request_with_tags_is_refused_naming_the_line(
    processed: Path, tmp_path: Path
) -> None:
    codec = TaggerCodec(bundle_of(processed), processed / VOCAB_FILE)
    path = write_conll(tmp_path / "tagged.conll", TEST)
    with pytest.raises(DataError, match=r"tagged\.conll: line 1 has a tag column"):
        codec.read(path)


# -- release ----------------------------------------------------------------------------------

GOLD = [("B-person", "O", "B-location"), ("O",), ("B-person", "I-person")]


class Replies:
    """A served model stand-in answering fixed tags per sentence."""

    def __init__(self, tags: list[list[str]]) -> None:
        self.tags = tags

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = [
            (key, t, tag)
            for key, tags in zip(frame["id"], self.tags, strict=True)
            for t, tag in enumerate(tags)
        ]
        return pd.DataFrame(rows, columns=["id", "token_index", "tag"])


def test_the_scorer_counts_entities_per_sentence_of_the_served_answers() -> None:
    requests = sentence_frame([("a", "b", "c"), ("d",), ("e", "f")], "id", ["s0", "s1", "s2"])
    scorer = EntityScorer(requests, GOLD, "id")
    perfect = scorer.score(Replies([list(g) for g in GOLD]))
    assert perfect.tolist() == [[2, 2, 2], [0, 0, 0], [1, 1, 1]] and entity_f1(perfect) == 1.0
    # a boundary error (B-person alone) is one false positive and one false negative
    off = scorer.score(Replies([["B-person", "O", "O"], ["O"], ["B-person", "O"]]))
    assert off.tolist() == [[1, 1, 2], [0, 0, 0], [0, 1, 1]]
    assert entity_f1(off) == pytest.approx(2 * 1 / (2 + 3))
    same = scorer.compare(perfect, perfect, 0.05)
    assert same.passed and same.value == 1.0


def test_a_significantly_worse_candidate_fails_the_regression_check() -> None:
    gold = [("B-person", "O")] * 40
    requests = sentence_frame([("a", "b")] * 40, "id", [f"s{i}" for i in range(40)])
    scorer = EntityScorer(requests, gold, "id")
    champion = scorer.score(Replies([["B-person", "O"]] * 40))
    candidate = scorer.score(Replies([["O", "O"]] * 30 + [["B-person", "O"]] * 10))
    check = scorer.compare(candidate, champion, 0.05)
    assert not check.passed and isinstance(check.value, float) and check.value < 0.001
    assert "entity F1 candidate 0.4000 vs champion 1.0000" in check.detail
    assert scorer.compare(champion, candidate, 0.05).passed  # better is never a regression


def predictions_frame(model: list[list[str]], baseline: list[list[str]]) -> pd.DataFrame:
    rows = [
        (i, t, f"w{t}", GOLD[i][t], model[i][t], baseline[i][t])
        for i in range(len(GOLD))
        for t in range(len(GOLD[i]))
    ]
    return pd.DataFrame(rows, columns=["sentence", "token_index", "token", "gold", "model", "crf"])


def test_the_baseline_comparison_reads_entity_f1_from_predictions_csv() -> None:
    metrics = TextLabelingMetrics(test={}, baseline={"crf": {}})
    frame = predictions_frame(
        [["B-person", "O", "B-location"], ["O"], ["B-person", "I-person"]],
        [["O", "O", "O"], ["O"], ["B-person", "I-person"]],
    )
    scores = paired_entity_scores(metrics, frame)
    assert scores.metric == "entity_f1"
    assert scores.value(scores.model) == 1.0
    assert scores.value(scores.baselines["crf"]) == pytest.approx(2 * 1 / (1 + 3))
    low, high = scores.interval("crf")
    assert 0.0 <= low <= high <= 1.0
    check = baseline_check(scores, 0.05)
    assert isinstance(check, Check) and check.passed and "no baseline did better" in check.detail
    assert get_release("sequence_labeling").paired_scores(metrics, frame).model.tolist() == (
        scores.model.tolist()
    )


def test_counts_array_matches_the_scorers_totals() -> None:
    predicted = [["B-person", "O", "O"], ["O"], ["B-person", "I-person"]]
    counts = counts_array(GOLD, predicted)
    assert counts.sum(axis=0).tolist() == [2, 2, 3]


# -- export: the served path is the evaluated model -------------------------------------------


@pytest.mark.parametrize(("crf", "word_shape"), [(True, False), (False, False), (True, True)])
def test_served_tags_equal_the_evaluated_networks(
    processed: Path, tmp_path: Path, crf: bool, word_shape: bool
) -> None:
    import torch

    from seqops import onnx_contract as contract
    from seqops.config import DataConfig as Data
    from seqops.model.network import SequenceNet
    from seqops.onnx_export import crf_outputs, export_onnx, make_bundle
    from seqops.serving import Predictor

    meta = meta_of(processed)
    task = get_serve("sequence_labeling")
    torch.manual_seed(0)
    net = SequenceNet(len(meta.feature_names), meta.n_outputs, vocab_size=meta.vocab_size,
                      embedding_dim=8, hidden_size=8, num_layers=1, per_step=True, crf=crf,
                      char_vocab_size=meta.char_vocab_size, char_dim=4, char_filters=4,
                      shape_chars=list(Vocabulary.load(processed / VOCAB_FILE).chars)
                      if word_shape else None)  # fmt: skip
    if crf:  # transitions that matter, so Viterbi and argmax differ
        with torch.no_grad():
            net.crf.transitions.normal_(0, 3.0)  # type: ignore[union-attr]
    net.eval()
    extra = crf_outputs(net)
    width = contract.token_width("tokens", meta.feature_names)
    expected = contract.expected_shapes(
        "tokens", width, task.output, task.output_shape(meta), extra, token_width=width
    )
    assert expected["tokens"] == ["batch", "time", 7]
    export_onnx(net, tmp_path / "model.onnx", 17, "tokens", task.output, expected)
    data = Data(task="sequence_labeling", dataset=None, path=Path("t"), val_path=Path("d"),
                test_path=Path("e"))  # fmt: skip
    bundle = make_bundle(meta, task, data, 16, tuple(extra))
    predictor = Predictor(tmp_path / "model.onnx", bundle, {VOCAB_FILE: processed / VOCAB_FILE})
    assert predictor.crf == crf and predictor.per_step
    tolerance = contract.Tolerance(1e-5, 1e-4)
    assert task.served_checks(net, predictor, processed, tolerance) == {
        "raw_sentence_tag_mismatches": 0.0
    }
    assert task.quality(predictor, processed).metric == "test/entity_f1"
