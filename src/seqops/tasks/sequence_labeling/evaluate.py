"""evaluate for text tagging: the trained tagger and the CRF baseline on the test sentences.

    evaluation = evaluate_tagger(net, processed, meta)
    evaluation.metrics.test["entity_f1"], evaluation.predictions_csv()

The network's tags are its CRF's Viterbi path (or each token's argmax without a CRF), scored
at the entity level as conlleval does (`scoring.score`: precision, recall, F1, per type) and
per token (accuracy). Beside it the classical baseline, `crf_baseline.choose_crf` fitted on
the training sentences with its penalties chosen on validation, scored on the same test
sentences (`baseline.crf`). `reports/predictions.csv` has one row per test token (sentence,
token index, token, gold tag, the model's and the baseline's), what the release's paired
test and the model card read. Plots: per-type entity F1 (model and baseline) and the tag
confusion matrix over tokens.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqops.layout import split_file
from seqops.tasks.parts.evaluate import EvaluateTask, Evaluation
from seqops.tasks.sequence_labeling import plots
from seqops.tasks.sequence_labeling.conll import Sentence
from seqops.tasks.sequence_labeling.conll_prepare import read_sentences
from seqops.tasks.sequence_labeling.meta import LabelingMeta, TextOrSeriesMeta
from seqops.tasks.sequence_labeling.reports import TextLabelingMetrics
from seqops.tasks.sequence_labeling.scoring import EntityCounts, score
from seqops.tasks.sequence_labeling.task import LabelingMetrics, LabelingReport, SequenceLabeling

if TYPE_CHECKING:
    from torch import nn

    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet
    from seqops.tasks.sequence_labeling.series_evaluate import SeriesEvaluation

#: The baseline's name in `reports/metrics.json` and its column of `predictions.csv`.
BASELINE = "crf"
#: Columns of `predictions.csv` before the baseline's.
PREDICTION_COLUMNS = ("sentence", "token_index", "token", "gold", "model")


def predict_tags(net: nn.Module, data: SequenceSet, batch_size: int = 256) -> list[np.ndarray]:
    """Each sequence's `(T_i,)` tag indices: the network's CRF Viterbi path when it has a CRF,
    else the argmax of each step's scores."""
    import torch

    from seqops.data.batches import loader

    # Read off the network, not imported: the model package stays out of the stages that
    # only look the task up (prepare, release).
    crf = getattr(net, "crf", None)
    net.eval()
    found: list[np.ndarray] = []
    with torch.no_grad():
        for x, lengths, _ in loader(data, batch_size, shuffle=False, per_step=True):
            scores = net(x, lengths)  # (B, T, C)
            tags = crf.decode(scores, lengths) if crf is not None else scores.argmax(-1)
            found += [row[:n].numpy() for row, n in zip(tags, lengths.tolist(), strict=True)]
    return found


def baseline_tags(processed: Path) -> list[list[str]]:
    """The CRF baseline's test tags: fitted on train, penalties chosen on validation."""
    from seqops.tasks.sequence_labeling.crf_baseline import choose_crf

    search = choose_crf(read_sentences(processed, "train"), read_sentences(processed, "val"))
    return search.tagger.predict([s.tokens for s in read_sentences(processed, "test")])


class LabelingEvaluation(Evaluation):
    """Test tags of the model and the baseline and what they score."""

    def __init__(
        self, test: list[Sentence], model: list[list[str]], baseline: list[list[str]]
    ) -> None:
        self.test, self.model, self.baseline = test, model, baseline
        gold = [s.tags for s in test]
        self.scores, self.baseline_scores = score(gold, model), score(gold, baseline)
        ours, theirs = self.scores.metrics(), self.baseline_scores.metrics()
        self.metrics = TextLabelingMetrics(
            test={
                **ours,
                "n": len(test),
                "n_tokens": sum(len(s.tokens) for s in test),
                "n_entities": self.scores.entities.gold,
            },
            per_class={
                kind: {
                    "precision": c.precision,
                    "recall": c.recall,
                    "f1": c.f1,
                    "support": float(c.gold),
                }
                for kind, c in self.scores.per_type.items()
            },
            baseline={BASELINE: theirs},
            skill={f"entity_f1_minus_{BASELINE}": ours["entity_f1"] - theirs["entity_f1"]},
        )

    def predictions_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*PREDICTION_COLUMNS, BASELINE])
        for i, (sentence, ours, theirs) in enumerate(
            zip(self.test, self.model, self.baseline, strict=True)
        ):
            for t, token in enumerate(sentence.tokens):
                writer.writerow([i, t, token, sentence.tags[t], ours[t], theirs[t]])
        return buf.getvalue()

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        from seqops import outputs

        outputs.write_text(plots / "confusion.csv", self.confusion_csv())
        outputs.write_text(plots / "per_type_f1.csv", self.per_type_csv())
        per_type, confusion = scratch / "per_type_f1.png", scratch / "confusion_matrix.png"
        self.per_type_png(per_type)
        self.confusion_png(confusion)
        outputs.write_bytes(plots / per_type.name, per_type.read_bytes())
        return [per_type, confusion]

    def confusion_csv(self) -> str:
        """One row per test token: gold tag (`actual`) and the model's (`predicted`)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        for sentence, ours in zip(self.test, self.model, strict=True):
            writer.writerows(zip(sentence.tags, ours, strict=True))
        return buf.getvalue()

    def per_type(self) -> tuple[list[str], list[float], list[float], list[int]]:
        """Every entity type either predicted or gold: its name, the model's and the baseline's
        entity F1, and its gold entities (0 for a type only a predictor produced)."""
        ours, theirs = self.scores.per_type, self.baseline_scores.per_type
        none = EntityCounts(0, 0, 0)
        kinds = sorted(ours.keys() | theirs.keys())
        return (
            kinds,
            [ours.get(k, none).f1 for k in kinds],
            [theirs.get(k, none).f1 for k in kinds],
            [max(ours.get(k, none).gold, theirs.get(k, none).gold) for k in kinds],
        )

    def per_type_csv(self) -> str:
        """Entity F1 per type of the model and the baseline, with the gold support."""
        return plots.f1_csv("type", *self.per_type(), BASELINE)

    def per_type_png(self, path: Path) -> None:
        kinds, ours, theirs, _ = self.per_type()
        plots.f1_bars_png(path, kinds, ours, theirs, BASELINE, "entity F1 per type")

    def confusion_png(self, path: Path) -> None:
        names = sorted(
            {t for s in self.test for t in s.tags} | {t for tags in self.model for t in tags},
            key=lambda tag: (tag != "O", tag),
        )
        gold = [t for s in self.test for t in s.tags]
        predicted = [t for tags in self.model for t in tags]
        # Log colour: `O` outnumbers every other tag by far.
        plots.confusion_png(path, gold, predicted, names, "tokens", log_colour=True)

    def logged_metrics(self) -> dict[str, float]:
        logged = {
            f"test/{k}": float(v)
            for k, v in self.metrics.test.items()
            if k not in ("n", "n_tokens", "n_entities")
        }
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        test, base = self.metrics.test, (self.metrics.baseline or {})[BASELINE]
        return (
            f"evaluate: test entity F1 {test['entity_f1']:.4f} (P {test['entity_precision']:.4f}, "
            f"R {test['entity_recall']:.4f}), token accuracy {test['token_accuracy']:.4f} on "
            f"{test['n']} sentences; {BASELINE} baseline entity F1 {base['entity_f1']:.4f}"
        )


def evaluate_tagger(net: nn.Module, processed: Path, meta: LabelingMeta) -> LabelingEvaluation:
    """The network's and the baseline's test tags, scored (see the module docstring)."""
    from seqops.data.sequences import SequenceSet

    test = SequenceSet.load(processed / split_file("test"))
    names = meta.label_names
    model = [[names[i] for i in tags] for tags in predict_tags(net, test)]
    return LabelingEvaluation(read_sentences(processed, "test"), model, baseline_tags(processed))


class SequenceLabelingEvaluate(
    EvaluateTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics],
    SequenceLabeling,
):
    """Entities scored as conlleval does (text), or steps and segments (series)."""

    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: TextOrSeriesMeta,
        data: DataConfig | None = None,
    ) -> LabelingEvaluation | SeriesEvaluation:
        if meta.input == "x":
            from seqops.tasks.sequence_labeling.series_evaluate import evaluate_series

            return evaluate_series(system, processed, meta)
        return evaluate_tagger(system, processed, meta)
