"""`sequence_labeling` of text: one tag per token of CoNLL sentences (named entities).

Data: three CoNLL files, `data.path` (train), `data.val_path` and `data.test_path`, read and
encoded by `prepare` (word and character vocabularies from the training split, `data.labeling`).
The network is a per-step `SequenceNet` over packed token rows (word id and character ids,
`model.char_features`) with a CRF layer (`model.crf`), trained on the per-token tags (masked
cross-entropy, or the CRF's likelihood); `val/token_accuracy` is logged each epoch.
Evaluate scores entities as conlleval does beside the CRF baseline (`evaluate`); the ONNX
graph outputs per-token scores `[batch, time, tags]` (and the CRF's transitions), which the
torch-free predictor decodes (`codec`); the release compares entity F1 per sentence counts by
approximate randomisation (`release`); the card's sections are in `card`.

This module is the `Task` seam only: each stage's work lives in the module named after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle, DataReport, MetricsReport
from seqops.errors import DataError, ExportError
from seqops.layout import split_file
from seqops.stats import PairedScores
from seqops.tasks.base import Codec, Prepared, Quality, Scorer, Task
from seqops.tasks.sequence_labeling.meta import LabelingMeta

if TYPE_CHECKING:
    from seqops.config import DataConfig, ModelConfig, TrainConfig
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor
    from seqops.tasks.sequence_labeling.evaluate import LabelingEvaluation


def _test_requests(processed: Path, bundle: Bundle, n: int | None = None) -> pd.DataFrame:
    """The first `n` raw test sentences (all with None) as a request frame, ids `seq<i>`."""
    from seqops.tasks.sequence_labeling.codec import sentence_frame
    from seqops.tasks.sequence_labeling.prepare import read_sentences

    test = read_sentences(processed, "test")[:n]
    return sentence_frame(
        [s.tokens for s in test], bundle.id_column, [f"seq{i}" for i in range(len(test))]
    )


class SequenceLabeling(Task):
    name = "sequence_labeling"
    meta_type = LabelingMeta
    metrics: ClassVar[frozenset[str]] = frozenset(
        {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"}
    )
    val_metrics: ClassVar[frozenset[str]] = frozenset({"token_accuracy"})
    reads = (
        "data.labeling.",
        "data.val_path",
        "data.test_path",
        "model.embedding_dim",
        "model.crf",
        "model.char_features",
    )
    ignored = (
        "data.dataset",
        "data.label_column",
        "data.time_column",
        "data.feature_columns",
        "data.time_format",
        "data.val_fraction",
        "data.test_fraction",
        "model.pooling",
        "model.encoder",
        "model.conv_from_length",
        "train.noise_std",
        "train.label_smoothing",
    )

    # -- config -----------------------------------------------------------------------------

    def check_data(self, data: DataConfig) -> None:
        missing = [key for key in ("path", "val_path", "test_path") if getattr(data, key) is None]
        if missing:
            raise ValueError(
                f"data.task=sequence_labeling reads three CoNLL files: set data.{missing[0]} "
                "(and dataset: null)"
            )

    # -- prepare ----------------------------------------------------------------------------

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.tasks.sequence_labeling.prepare import prepare_conll

        return prepare_conll(data)

    def summary(self, report: DataReport) -> str:
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sentences, {report.vocab_size} words, {report.char_vocab_size} characters, "
            f"{report.n_classes} tags from {report.source}"
        )

    # -- train ------------------------------------------------------------------------------

    def network_args(self, meta: Any, processed: Path, model: ModelConfig) -> dict[str, Any]:
        if model.embeddings_path is not None:
            raise DataError("model.embeddings_path: pretrained vectors are for text_classification")
        return {
            "vocab_size": meta.vocab_size,
            "embedding_dim": model.embedding_dim,
            "per_step": True,
            "crf": model.crf,
            "char_vocab_size": meta.char_vocab_size if model.char_features else None,
        }

    def objective(self, meta: Any, train: TrainConfig) -> dict[str, Any]:
        # The system trains a network built with a CRF layer by the CRF's likelihood instead.
        return {"kind": "tagging", "n_tags": meta.n_outputs}

    # -- evaluate ---------------------------------------------------------------------------

    def evaluate(self, system: SequenceNet, processed: Path, meta: Any) -> LabelingEvaluation:
        from seqops.tasks.sequence_labeling.evaluate import evaluate_tagger

        return evaluate_tagger(system, processed, meta, self.name)

    # -- export -----------------------------------------------------------------------------

    def output_shape(self, meta: Any) -> list[str | int]:
        return contract.per_step_shape(meta.n_outputs)

    def agreement(self, got: np.ndarray, expected: np.ndarray) -> int | None:
        """Sequences whose every step has the same highest-scoring tag."""
        return int((got.argmax(axis=-1) == expected.argmax(axis=-1)).all(axis=1).sum())

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Entity F1 of the served graph's decoded tags on the prepared test tokens."""
        from seqops.data.sequences import SequenceSet
        from seqops.serving import run_per_step
        from seqops.tasks.sequence_labeling.prepare import read_sentences
        from seqops.tasks.sequence_labeling.scoring import score

        test = SequenceSet.load(processed / split_file("test"))
        names = predictor.bundle.data.label_names
        tags = [[names[i] for i in t] for t in run_per_step(test.sequences, predictor.tags)]
        gold = [s.tags for s in read_sentences(processed, "test")]
        return Quality("test/entity_f1", score(gold, tags).entities.f1, lower_is_better=False)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The raw test sentences through `vocab.json`, ONNX and the torch-free decoder must
        get the evaluated network's tags on every token, or the served model is not the
        evaluated one."""
        from seqops.data.sequences import SequenceSet
        from seqops.tasks.sequence_labeling.evaluate import predict_tags

        names = predictor.bundle.data.label_names
        test = SequenceSet.load(processed / split_file("test"))
        evaluated = np.concatenate([[names[i] for i in t] for t in predict_tags(system, test)])
        served = predictor.predict_frame(
            _test_requests(processed, predictor.bundle), "test sentences"
        )
        differ = int(np.sum(served["tag"].to_numpy() != evaluated))
        if differ:
            raise ExportError(
                f"the raw test sentences served through vocab.json, ONNX and the decoder get "
                f"{differ} of {len(evaluated)} token tags other than the evaluated network's"
            )
        return {"raw_sentence_tag_mismatches": float(differ)}

    def request_example(self, processed: Path, bundle: Bundle, n: int) -> pd.DataFrame:
        return _test_requests(processed, bundle, n)

    def bundle_files(self, meta: Any) -> list[str]:
        return [meta.vocab]

    # -- serving ----------------------------------------------------------------------------

    def codec(self, bundle: Bundle, files: dict[str, Path]) -> Codec:
        from seqops.tasks.sequence_labeling.codec import TaggerCodec

        return TaggerCodec(bundle, files[bundle.data.vocab])  # type: ignore[attr-defined]

    # -- release ----------------------------------------------------------------------------

    def scorer(self, processed: Path, bundle: Bundle) -> Scorer:
        from seqops.tasks.sequence_labeling.prepare import read_sentences
        from seqops.tasks.sequence_labeling.release import EntityScorer

        gold = [s.tags for s in read_sentences(processed, "test")]
        return EntityScorer(_test_requests(processed, bundle), gold, bundle.id_column)

    def paired_scores(self, metrics: MetricsReport, predictions: pd.DataFrame) -> PairedScores:
        from seqops.tasks.sequence_labeling.release import paired_entity_scores

        return paired_entity_scores(metrics, predictions)

    # -- model card -------------------------------------------------------------------------

    def card_inputs(self, report: DataReport) -> str:
        from seqops.tasks.sequence_labeling import card

        return card.inputs(report)

    def card_targets(self, report: DataReport) -> str:
        from seqops.tasks.sequence_labeling import card

        return card.targets(report)

    def card_data(self, report: DataReport) -> str:
        from seqops.tasks.sequence_labeling import card

        return card.data(report)

    def card_metrics(self, metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
        from seqops.tasks.sequence_labeling import card

        return card.metrics_lines(metrics, predictions)

    def card_use(self, report: DataReport) -> str:
        from seqops.tasks.sequence_labeling import card

        return card.use(report)
