"""The `sequence_labeling` task on numeric series, seam by seam on a tiny long-format CSV:
prepare (the source rule, whole series per split, the scaler from training steps only,
per-step labels on disk and padded with the ignore index in batches, a label train lacks
refused), the request codec and its refusals, the release's segment scorer and paired test,
and end to end in-process: a tiny network trained a few steps, evaluated beside the window
baseline, exported to ONNX and served from raw rows with the evaluated network's labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.config import DataConfig, ModelConfig, TrainConfig
from seqops.contracts import Bundle, OnnxIO, read_json
from seqops.data.batches import IGNORE_INDEX
from seqops.data.sequences import SequenceSet
from seqops.errors import DataError
from seqops.layout import Layout, split_file
from seqops.tasks import read_meta
from seqops.tasks.parts.evaluate import get_evaluate
from seqops.tasks.parts.prepare import get_prepare
from seqops.tasks.parts.release import baseline_check, get_release
from seqops.tasks.parts.train import get_train
from seqops.tasks.sequence_labeling.meta import LabelingMeta
from seqops.tasks.sequence_labeling.reports import SeriesLabelingMetrics
from seqops.tasks.sequence_labeling.series_codec import StepCodec
from seqops.tasks.sequence_labeling.series_prepare import STEPS_FILE
from seqops.tasks.sequence_labeling.series_release import (
    SegmentScorer,
    paired_segment_scores,
    segment_counts,
)

N_SERIES, LENGTH = 10, 24


def long_table(n_series: int = N_SERIES, length: int = LENGTH) -> pd.DataFrame:
    """Series whose label follows feature `a` (rest below 0, move above), ids `s0`...; each
    series' offset in `b` is its index, so which series a split holds shows in its steps."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_series):
        labels = np.where((np.arange(length) // 6 + i) % 2 == 0, "rest", "move")
        a = np.where(labels == "move", 2.0, -2.0) + rng.normal(0, 0.3, length)
        for t in range(length):
            rows.append({"id": f"s{i}", "time": t, "a": a[t], "b": 10.0 * i, "label": labels[t]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # any row order reads the same


def series_data(path: Path, **overrides: object) -> DataConfig:
    return DataConfig.model_validate(
        {"task": "sequence_labeling", "dataset": None, "path": path, "val_fraction": 0.2,
         "test_fraction": 0.2, **overrides}
    )  # fmt: skip


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seqops.stages.prepare import write

    root = tmp_path_factory.mktemp("series")
    long_table().to_csv(root / "steps.csv", index=False)
    layout = Layout(root)
    write(get_prepare("sequence_labeling").prepare(series_data(root / "steps.csv"), seed=0), layout)
    return layout.processed


def meta_of(processed: Path) -> LabelingMeta:
    meta = read_meta(processed / "preprocessing.json")
    assert isinstance(meta, LabelingMeta) and meta.series
    return meta


# -- config and prepare -----------------------------------------------------------------------


def test_a_table_is_series_and_conll_files_with_it_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.val_path is for CoNLL text"):
        series_data(tmp_path / "steps.csv", val_path=tmp_path / "dev.conll")
    with pytest.raises(ValueError, match=r"basic_motions_segments"):
        DataConfig(task="sequence_labeling", dataset="JapaneseVowels")
    DataConfig(task="sequence_labeling", dataset="basic_motions_segments")


def test_series_log_no_entity_f1_and_refuse_to_stop_on_it(processed: Path) -> None:
    """Series labels are not BIO tags: the objective has no entity F1 to log, so a monitor on
    it is refused with the metrics that are logged."""
    task, meta = get_train("sequence_labeling"), read_meta(processed / "preprocessing.json")
    spec = task.objective(meta, TrainConfig(monitor="val/token_accuracy"), ModelConfig())
    assert "tag_names" not in spec
    with pytest.raises(DataError, match=r"train\.monitor = val/entity_f1: numeric series"):
        task.objective(meta, TrainConfig(monitor="val/entity_f1"), ModelConfig())


def test_splits_hold_whole_series_and_the_scaler_comes_from_train(processed: Path) -> None:
    meta = meta_of(processed)
    assert meta.feature_names == ["a", "b"] and meta.label_names == ["move", "rest"]
    splits = {s: SequenceSet.load(processed / split_file(s)) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert meta.scaler is not None
    mean, std = np.array(meta.scaler.mean), np.array(meta.scaler.std)
    # `b` is constant within a series: every standardised step of a series has one b, and the
    # training steps' b has mean 0 and std 1.
    train_b = np.concatenate([s[:, 1] for s in splits["train"].sequences])
    assert abs(train_b.mean()) < 1e-5 and abs(train_b.std() - 1) < 1e-5
    raw_b = {
        split: sorted({round(float(s[0, 1] * std[1] + mean[1])) for s in part.sequences})
        for split, part in splits.items()
    }
    assert sorted(b for found in raw_b.values() for b in found) == [10 * i for i in range(N_SERIES)]
    assert all(len(set(np.round(s[:, 1], 4))) == 1 for s in splits["test"].sequences)


def test_labels_are_stored_per_step_and_padded_with_the_ignore_index(processed: Path) -> None:
    from seqops.data.batches import loader

    train = SequenceSet.load(processed / split_file("train"))
    assert train.per_step and all(
        len(y) == len(s) for s, y in zip(train.sequences, train.labels, strict=True)
    )
    short = SequenceSet.with_step_labels(
        [train.sequences[0][:5], train.sequences[1]], [train.labels[0][:5], train.labels[1]]
    )
    x, lengths, y = next(iter(loader(short, 2, shuffle=False, per_step=True)))
    assert tuple(x.shape) == (2, LENGTH, 2) and lengths.tolist() == [5, LENGTH]
    assert (y[0, 5:] == IGNORE_INDEX).all() and (y[0, :5] >= 0).all()


def test_prepare_reports_steps_labels_and_segments(processed: Path) -> None:
    report = read_json(processed.parent.parent / "reports" / "data.json")
    assert report["input"] == "x"  # what a reader tells series from text by
    assert report["n_steps"] == {"train": 6 * LENGTH, "val": 2 * LENGTH, "test": 2 * LENGTH}
    assert sum(report["step_counts"]["test"].values()) == 2 * LENGTH
    assert sum(report["segment_counts"]["train"].values()) == 6 * 4  # 4 runs of 6 steps each


def test_a_label_train_lacks_is_refused_naming_the_file(tmp_path: Path) -> None:
    frame = long_table()
    frame.loc[frame["id"] == "s3", "label"] = "jump"  # one series: not in train for some seed
    path = tmp_path / "steps.csv"
    frame.to_csv(path, index=False)
    task = get_prepare("sequence_labeling")
    for seed in range(6):
        try:
            task.prepare(series_data(path), seed)
        except DataError as exc:
            assert str(path) in str(exc) and "jump" in str(exc)
            return
    pytest.fail("no seed held the series with the extra label out of train")


# -- serving ----------------------------------------------------------------------------------


def bundle_of(processed: Path, max_length: int = 64) -> Bundle:
    return Bundle(
        data=meta_of(processed),
        id_column="id",
        time_column="time",
        max_length=max_length,
        onnx=OnnxIO(
            inputs=["x", "lengths"],
            outputs=["logits"],
            dynamic_axes={"x": {"0": "batch", "1": "time"}},
        ),
    )


def positive_is_move(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A stand-in for the served graph: label 0 (`move`) where standardised `a` is above 0."""
    real = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return np.where(real, (x[..., 0] <= 0).astype(np.int64), -1)


def request(processed: Path) -> pd.DataFrame:
    steps = pd.read_parquet(processed / STEPS_FILE).drop(columns=["label"])
    return steps.iloc[::-1].reset_index(drop=True)  # rows in any order


def test_the_codec_answers_one_row_per_step_in_time_order(processed: Path) -> None:
    codec = StepCodec(bundle_of(processed))
    frame = request(processed)
    out = codec.predict_frame(frame, positive_is_move, "request")
    assert list(out.columns) == ["id", "time", "label"] and len(out) == len(frame)
    for _, rows in out.groupby("id"):
        assert rows["time"].tolist() == list(range(LENGTH))
    truth = pd.read_parquet(processed / STEPS_FILE)
    merged = out.merge(truth, on=["id", "time"])
    assert (merged["label_x"] == merged["label_y"]).mean() > 0.9  # `a` separates the labels


@pytest.mark.parametrize("case", ["label", "nan", "missing", "too_long"])
def test_a_bad_request_is_one_data_error_naming_it(processed: Path, case: str) -> None:
    frame, max_length, match = request(processed), 64, ""
    if case == "label":
        frame["label"] = "rest"
        match = "'label' holds the labels"
    elif case == "nan":
        frame.loc[3, "a"] = np.nan
        match = "'a'"
    elif case == "missing":
        frame = frame.drop(columns=["b"])
        match = r"missing column\(s\) \['b'\]"
    else:  # one series of LENGTH + 1 steps, one over the limit
        first = frame["id"].iloc[0]
        extra = frame[frame["id"] == first].head(1).assign(time=LENGTH)
        frame, max_length, match = pd.concat([frame, extra]), LENGTH, "export.max_length"
    codec = StepCodec(bundle_of(processed, max_length))
    with pytest.raises(DataError, match=match):
        codec.predict_frame(frame, positive_is_move, "request")


# -- release ----------------------------------------------------------------------------------

GOLD = [np.array(list("aaaabbbb")), np.array(list("aabbaabb"))]


class FixedModel:
    """A served model answering fixed labels for the two series `p`, `q`."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": frame["id"], "time": frame["time"], "label": self.labels})


def test_the_scorer_counts_segments_per_series_of_the_served_answers() -> None:
    requests = pd.DataFrame({"id": ["p"] * 8 + ["q"] * 8, "time": list(range(8)) * 2})
    scorer = SegmentScorer(requests, GOLD, "id")
    # p: right; q: one long `a` run (IoU 2/6 with the first gold a: no match) then `b` x2.
    counts = scorer.score(FixedModel(list("aaaabbbb") + list("aaaaaabb")))
    assert counts.tolist() == [[2, 2, 2], [1, 2, 4]]
    same = scorer.compare(counts, counts, 0.05)
    assert same.passed and same.value == 1.0


def test_a_significantly_worse_candidate_fails_the_regression_check() -> None:
    champion = np.tile([[2, 2, 2]], (30, 1))
    candidate = np.tile([[0, 2, 2]], (30, 1))
    requests = pd.DataFrame({"id": ["p"], "time": [0]})
    check = SegmentScorer(requests, GOLD, "id").compare(candidate, champion, 0.05)
    assert not check.passed and "segment F1" in check.detail and "30 test series" in check.detail


def test_the_baseline_comparison_reads_segment_f1_from_predictions_csv() -> None:
    actual = np.concatenate(GOLD)
    predictions = pd.DataFrame(
        {
            "series": ["p"] * 8 + ["q"] * 8,
            "time": list(range(8)) * 2,
            "actual": actual,
            "model": actual,
            "window": list("aaaaaaaa") + list("aabbaabb"),
        }
    )
    metrics = SeriesLabelingMetrics(
        test={"segment_f1": 1.0}, baseline={"window": {"segment_f1": 0.5}}
    )
    scores = paired_segment_scores(metrics, predictions)
    assert scores.metric == "segment_f1" and scores.value(scores.model) == 1.0
    # p: one predicted run of 8 over gold runs of 4: IoU 0.5 with the first, a match.
    assert scores.value(scores.baselines["window"]) == pytest.approx(2 * 5 / (5 + 6))
    assert baseline_check(scores, 0.05).passed
    assert segment_counts(GOLD, GOLD).sum(axis=0).tolist() == [6, 6, 6]


# -- end to end, in-process -------------------------------------------------------------------


@pytest.mark.parametrize("crf", [True, False])
def test_a_trained_net_is_evaluated_and_served_with_the_same_labels(
    processed: Path, tmp_path: Path, crf: bool
) -> None:
    import torch

    from seqops import onnx_contract as contract
    from seqops.data.batches import loader
    from seqops.model.network import SequenceNet
    from seqops.model.objectives import build_objective
    from seqops.onnx_export import crf_outputs, export_onnx, make_bundle
    from seqops.serving import Predictor

    meta = meta_of(processed)
    task = get_train("sequence_labeling")
    torch.manual_seed(0)
    net = SequenceNet(2, meta.n_outputs, hidden_size=8, num_layers=1, per_step=True, crf=crf)
    spec = task.objective(meta, TrainConfig(), ModelConfig(crf=crf))
    objective = build_objective(spec, net)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    train = SequenceSet.load(processed / split_file("train"))
    net.train()
    for _ in range(15):
        for x, lengths, y in loader(train, 6, shuffle=False, per_step=True):
            optimiser.zero_grad()
            objective.loss(net(x, lengths), y).backward()
            optimiser.step()
    net.eval()

    evaluation = get_evaluate(task.name).evaluate(net, processed, meta)
    test = evaluation.metrics.test
    assert test["step_accuracy"] > 0.9 and "window" in (evaluation.metrics.baseline or {})
    predictions = pd.read_csv(io.StringIO(evaluation.predictions_csv()))
    assert list(predictions.columns) == ["series", "time", "actual", "model", "window"]
    assert len(predictions) == test["n_steps"]
    release = get_release(task.name)
    scores = release.paired_scores(evaluation.metrics, predictions)
    assert scores.value(scores.model) == pytest.approx(test["segment_f1"])

    extra = crf_outputs(net)
    expected = contract.expected_shapes("x", 2, release.output, release.output_shape(meta), extra)
    export_onnx(net, tmp_path / "model.onnx", 17, "x", task.output, expected)
    data = DataConfig(task="sequence_labeling", dataset=None, path=Path("steps.csv"))
    bundle = make_bundle(meta, release, data, 64, tuple(extra))
    predictor = Predictor(tmp_path / "model.onnx", bundle, {})
    assert predictor.per_step and predictor.crf == crf
    tolerance = contract.Tolerance(1e-5, 1e-4)
    assert release.served_checks(net, predictor, processed, tolerance) == {
        "raw_series_label_mismatches": 0.0
    }
    assert release.quality(predictor, processed).metric == "test/segment_f1"
    requests = release.request_example(processed, bundle, 1)
    assert requests["id"].nunique() == 1 and "label" not in requests.columns
    signature = predictor.codec.signature()
    assert [c.name for c in signature.outputs.inputs] == ["id", "time", "label"]
