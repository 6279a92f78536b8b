"""Serving a stream with the state carried by the caller (`seqops.stream_serving`): a stream
continued from a returned state answers what the whole sequence answers at once, on any
predictor loaded from the bundle; a bad state is refused with one clear message."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.contracts import DataMeta
from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.onnx_export import export_step, seal_bundle
from seqops.serving import Predictor
from seqops.stream_serving import STATE_COLUMN, STATE_PREFIX
from seqops.tasks import read_meta
from tests.conftest import assert_predict_succeeds_without_torch
from tests.unit.bundles import bundle_of, classification_meta, expected_shapes, export

FEATURES = ["a", "b", "c"]
LABELS = ["down", "flat", "up"]
MEAN = np.array([1.0, -2.0, 0.5])
STD = np.array([2.0, 0.5, 1.0])


def network(cell: str, *, per_step: bool = False, seed: int = 0, **kw: object) -> SequenceNet:
    torch.manual_seed(seed)
    args = {"cell": cell, "hidden_size": 6, "num_layers": 2, "bidirectional": False,
            "pooling": "last", "encoder": "linear", "per_step": per_step, **kw}  # fmt: skip
    return SequenceNet(3, 3, **args).eval()


def write(models: Path, net: SequenceNet, meta: DataMeta, *, step: bool = True) -> Path:
    models.mkdir(parents=True, exist_ok=True)
    export(net, models / contract.MODEL_FILE, meta)
    if step:
        export_step(net, models / contract.STEP_FILE, 17, contract.OUTPUT, expected_shapes(meta))
    seal_bundle(models, bundle_of(meta, max_length=20))
    return models


def series_meta(directory: Path) -> DataMeta:
    """A series labeler's metadata (per-step output, one tag per label), read back as prepare's
    metadata is read, so the task picks its own type."""
    path = directory / "series_meta.json"
    path.write_text(json.dumps({
        "task": "sequence_labeling", "input": "x", "feature_names": FEATURES,
        "label_names": LABELS, "n_outputs": len(LABELS), "max_train_length": 12,
        "scaler": {"mean": MEAN.tolist(), "std": STD.tolist()}, "label_column": "label",
    }))  # fmt: skip
    return read_meta(path)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    meta = classification_meta(FEATURES, LABELS, MEAN, STD)
    return write(tmp_path_factory.mktemp("classifier"), network("lstm"), meta)


@pytest.fixture(scope="module", params=["last", "mean", "attention"])
def pooled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier of each pooling that streams."""
    meta = classification_meta(FEATURES, LABELS, MEAN, STD)
    net = network("gru", pooling=request.param)
    return write(tmp_path_factory.mktemp(f"pooled-{request.param}"), net, meta)


@pytest.fixture(scope="module")
def labeler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("labeler")
    return write(models, network("gru", per_step=True), series_meta(models))


def rows(lengths: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    found = [
        {"id": sid, "time": t, **dict(zip(FEATURES, rng.normal(MEAN, STD).tolist(), strict=True))}
        for sid, n in lengths.items()
        for t in range(n)
    ]
    return pd.DataFrame(found)


def continued(first: pd.DataFrame, later: pd.DataFrame, predictors: list[Predictor]):
    """`first` sent as a new stream to one predictor, `later` continued from the returned
    states on another (a replica: nothing but the request carries the state)."""
    answer = predictors[0].predict_frame(first.assign(**{STATE_COLUMN: ""}))
    states = dict(zip(answer["id"], answer[STATE_COLUMN], strict=False))
    return answer, predictors[1].predict_frame(
        later.assign(**{STATE_COLUMN: later["id"].map(states)})
    )


def test_a_classifier_stream_continued_from_its_state_equals_the_whole_sequence(
    pooled: Path,
) -> None:
    whole = rows({"s1": 11, "s2": 7, "s3": 15})
    replicas = [Predictor.load(pooled), Predictor.load(pooled)]
    at_once = replicas[0].predict_frame(whole)
    first, second = continued(whole[whole["time"] < 5], whole[whole["time"] >= 5], replicas)
    assert list(second["id"]) == ["s1", "s2", "s3"]
    probabilities = [f"p_{name}" for name in LABELS]
    np.testing.assert_allclose(
        second[probabilities].to_numpy(), at_once[probabilities].to_numpy(), atol=1e-5, rtol=1e-4
    )
    assert list(second["label"]) == list(at_once["label"])
    # The first answer is the answer for the first 5 steps alone.
    prefix = replicas[0].predict_frame(whole[whole["time"] < 5])
    np.testing.assert_allclose(first[probabilities], prefix[probabilities], atol=1e-5, rtol=1e-4)
    assert all(s.startswith(STATE_PREFIX + ":") for s in second[STATE_COLUMN])


def test_a_stream_fed_one_step_per_request_equals_the_whole_sequence(classifier: Path) -> None:
    predictor = Predictor.load(classifier)
    whole = rows({"s1": 9})
    state = ""
    for t in range(9):
        answer = predictor.predict_frame(whole[whole["time"] == t].assign(**{STATE_COLUMN: state}))
        state = answer[STATE_COLUMN].iloc[0]
    at_once = predictor.predict_frame(whole)
    np.testing.assert_allclose(answer["p_up"], at_once["p_up"], atol=1e-5, rtol=1e-4)


def test_a_tagger_stream_labels_each_chunk_as_the_whole_series(labeler: Path) -> None:
    predictor = Predictor.load(labeler)
    whole = rows({"a": 12, "b": 8}, seed=3)
    at_once = predictor.predict_frame(whole)
    first, second = continued(whole[whole["time"] < 6], whole[whole["time"] >= 6], [predictor] * 2)
    streamed = pd.concat([first, second]).drop(columns=[STATE_COLUMN])
    merged = at_once.merge(streamed, on=["id", "time"], suffixes=("", "_streamed"))
    assert len(merged) == 20 and (merged["label"] == merged["label_streamed"]).all()
    # Every row of a sequence carries the state after the chunk's last step.
    assert second.groupby("id")[STATE_COLUMN].nunique().eq(1).all()


# -- refusals ---------------------------------------------------------------------------------


def state_of(predictor: Predictor, frame: pd.DataFrame) -> str:
    answer = predictor.predict_frame(frame.assign(**{STATE_COLUMN: ""}))
    return str(answer[STATE_COLUMN].iloc[0])


def refusal(predictor: Predictor, frame: pd.DataFrame, state: object) -> str:
    with pytest.raises(DataError) as caught:
        predictor.predict_frame(frame.assign(**{STATE_COLUMN: [state] * len(frame)}))
    return str(caught.value)


def test_bad_states_are_refused_with_one_clear_message(
    classifier: Path, labeler: Path, tmp_path: Path
) -> None:
    predictor = Predictor.load(classifier)
    frame = rows({"s1": 3})
    good = state_of(predictor, frame)
    prefix, model, data = good.split(":")
    raw = base64.urlsafe_b64decode(data)

    short = f"{prefix}:{model}:{base64.urlsafe_b64encode(raw[:-4]).decode()}"
    assert len(raw) == 96  # h and c: 2 layers × 6 float32 values each
    assert refusal(predictor, frame, short) == (
        "input: sequence 's1': stream_state holds 92 bytes, not the 96 of this model's state "
        "(24 float32 values (h 2 × 6, c 2 × 6))"
    )

    nan = np.frombuffer(raw, dtype="<f4").copy()
    nan[3] = np.nan
    with_nan = f"{prefix}:{model}:{base64.urlsafe_b64encode(nan.tobytes()).decode()}"
    assert refusal(predictor, frame, with_nan) == (
        "input: sequence 's1': stream_state holds NaN or infinite values"
    )

    other = Predictor.load(write(tmp_path, network("lstm", seed=1), classification_meta(
        FEATURES, LABELS, MEAN, STD)))  # fmt: skip
    foreign = state_of(other, frame)
    theirs = foreign.split(":")[1]
    assert theirs != model
    assert refusal(predictor, frame, foreign) == (
        f"input: sequence 's1': stream_state comes from another model (fingerprint '{theirs}'; "
        f"this model is '{model}'): a stream continues only on the model that started it; "
        "start a new stream with an empty state"
    )
    # A labeler's state (another shape, another model) is refused by its fingerprint.
    tagger_state = state_of(Predictor.load(labeler), frame)
    assert "comes from another model" in refusal(predictor, frame, tagger_state)

    assert refusal(predictor, frame, "not a state") == (
        "input: sequence 's1': stream_state 'not a state' is not a stream state (expected "
        "'seqops-state/1:<model>:<data>' as an answer returned it, or empty to start a stream)"
    )
    assert refusal(predictor, frame, 3.5).startswith("input: sequence 's1': stream_state 3.5 is")
    assert refusal(predictor, frame, [1, 2]).startswith("input: sequence 's1': stream_state [1")


def test_rows_of_one_sequence_must_carry_the_same_state(classifier: Path) -> None:
    predictor = Predictor.load(classifier)
    frame = rows({"s1": 4})
    good = state_of(predictor, frame)
    mixed = frame.assign(**{STATE_COLUMN: [good, good, "", good]})
    with pytest.raises(DataError, match=r"^input: sequence 's1': its rows carry different"):
        predictor.predict_frame(mixed)


def test_a_model_that_cannot_stream_refuses_a_stream_request(tmp_path: Path) -> None:
    net = network("gru", bidirectional=True)
    predictor = Predictor.load(write(tmp_path, net, classification_meta(FEATURES, LABELS),
                                     step=False))  # fmt: skip
    assert predictor.stepper is None
    with pytest.raises(DataError, match=r"this model has no step graph \(model_step\.onnx\)"):
        predictor.predict_frame(rows({"s1": 3}).assign(**{STATE_COLUMN: ""}))


# -- seqops predict -------------------------------------------------------------------------


def test_predict_streams_without_torch_and_exits_nonzero_on_a_bad_state(
    classifier: Path, tmp_path: Path
) -> None:
    requests = tmp_path / "chunk.csv"
    rows({"s1": 4}).assign(**{STATE_COLUMN: ""}).to_csv(requests, index=False)
    answers = tmp_path / "answers.csv"
    assert_predict_succeeds_without_torch(
        ["predict", "--model", str(classifier), "--input", str(requests), "--output", str(answers)]
    )
    state = pd.read_csv(answers)[STATE_COLUMN].iloc[0]
    assert state.startswith(STATE_PREFIX)

    bad = tmp_path / "bad.csv"
    rows({"s1": 4}).assign(**{STATE_COLUMN: state[:-8]}).to_csv(bad, index=False)
    command = ["predict", "--model", str(classifier), "--input", str(bad)]
    proc = subprocess.run(
        [sys.executable, "-m", "seqops", *command], capture_output=True, text=True
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert "stream_state holds" in proc.stderr and "bytes, not the 96" in proc.stderr


def test_a_text_stream_sent_in_pieces_answers_the_whole_text(tmp_path: Path) -> None:
    """Token input and attention pooling: a review sent as two pieces of whole words."""
    from seqops.data.text import TextEncoder, train_tokenizer
    from seqops.tasks.text.task import TOKENIZER_FILE
    from tests.unit.bundles import text_meta

    train = ["a fine warm film", "a dull cold film", "fine acting but a dull plot"]
    tokenizer = train_tokenizer(
        train, kind="word", normalization="nfkc", lowercase=True, vocab_size=50,
        min_frequency=1, max_len=8,
    )  # fmt: skip
    encoder = TextEncoder(tokenizer)
    meta = text_meta(["neg", "pos"], encoder.vocab_size, 8, text_column="review",
                     max_train_length=6)  # fmt: skip
    torch.manual_seed(0)
    net = SequenceNet(0, 2, cell="gru", hidden_size=6, num_layers=2, bidirectional=False,
                      pooling="attention", vocab_size=encoder.vocab_size,
                      embedding_dim=5).eval()  # fmt: skip
    tokenizer.save(str(tmp_path / TOKENIZER_FILE))
    predictor = Predictor.load(write(tmp_path, net, meta))

    whole = pd.DataFrame({"id": ["r1", "r2"], "review": ["a fine warm film but", "a dull plot"]})
    at_once = predictor.predict_frame(whole)
    first = pd.DataFrame({"id": ["r1", "r2"], "review": ["a fine", "a dull"]})
    answer = predictor.predict_frame(first.assign(**{STATE_COLUMN: ""}))
    later = pd.DataFrame(
        {
            "id": ["r1", "r2"],
            "review": ["warm film but", "plot"],
            STATE_COLUMN: answer[STATE_COLUMN],
        }
    )
    continued = predictor.predict_frame(later)
    np.testing.assert_allclose(continued[["p_neg", "p_pos"]], at_once[["p_neg", "p_pos"]],
                               atol=1e-5, rtol=1e-4)  # fmt: skip
