"""The language_modeling task's seams: its config keys, prepare's streams and blocks, the
system's stateful windows, the per-block paired scores and the sampler (fast, no pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from seqops.config import Config, DataConfig
from seqops.errors import DataError
from seqops.model.system import LitSequenceModel
from seqops.tasks.language_modeling.generate import Sampling, draw
from seqops.tasks.language_modeling.meta import blocks_file, streams_file
from seqops.tasks.language_modeling.release import (
    BlockPairedScores,
    metric_value,
    no_regression,
)
from seqops.tasks.language_modeling.streams import load_streams
from seqops.tasks.language_modeling.vocab import TokenVocabulary
from seqops.tasks.parts.prepare import get_prepare

TEXTS = {
    "a": "To be, or not to be: that is the question.\n",
    "b": "Whether 'tis nobler in the mind to suffer\n",
    "c": "The slings and arrows of outrageous fortune,\n",
    "d": "Or to take arms against a sea of troubles.\n",
}


def corpus(tmp_path: Path, texts: dict[str, str] = TEXTS) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    return folder


def lm_data(folder: Path, **extra: object) -> DataConfig:
    fields: dict = {"task": "language_modeling", "dataset": None, "path": folder,
                    "val_documents": ["c"], "test_documents": ["d"], **extra}  # fmt: skip
    return DataConfig(**fields)


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"units": "chars"}, "units"),
        ({"unit": "char"}, "unit"),  # a typo of a key: extra keys are forbidden
        ({"vocab_size": 500}, "data.vocab_size = 500 is for data.units: word"),
        ({"val_documents": ["c"], "test_documents": ["c"]}, "both name 'c'"),
        ({"block_tokens": 1}, "block_tokens"),
    ],
)
def test_bad_language_model_data_keys_are_refused(tmp_path: Path, data: dict, message: str) -> None:
    fields = {"task": "language_modeling", "dataset": None, "path": str(tmp_path), **data}
    with pytest.raises(ValidationError, match=message):
        Config.model_validate({"data": fields})


def test_a_language_model_needs_a_folder_and_other_tasks_refuse_its_keys() -> None:
    with pytest.raises(ValidationError, match=r"folder of \.txt documents"):
        Config.model_validate({"data": {"task": "language_modeling"}})
    with pytest.raises(ValidationError, match=r"data\.units = 'word' is not read by"):
        Config.model_validate({"data": {"units": "word"}})
    with pytest.raises(ValidationError, match="bptt"):
        Config.model_validate({"train": {"bptt": 0}})


def test_the_monitor_and_release_metric_fit_the_task(tmp_path: Path) -> None:
    data = {"task": "language_modeling", "dataset": None, "path": str(tmp_path)}
    cfg = Config.model_validate(
        {"data": data, "release": {"metric": "test/bits_per_char", "max_metric": 3.0}}
    )
    assert cfg.train.monitor_mode == "min"
    with pytest.raises(ValidationError, match="val/accuracy"):
        Config.model_validate({"data": data, "train": {"monitor": "val/accuracy"}})
    with pytest.raises(ValidationError, match="max_metric"):
        Config.model_validate({"data": data, "release": {"metric": "test/perplexity"}})


# -- prepare ------------------------------------------------------------------------------------


def test_an_empty_document_is_refused_naming_it(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {**TEXTS, "e": "  \n\n"})
    with pytest.raises(DataError, match=r"e\.txt: empty document"):
        get_prepare("language_modeling").prepare(lm_data(folder), seed=0)


def test_a_one_word_document_is_refused_for_words(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {**TEXTS, "e": "Alone\n"})
    with pytest.raises(DataError, match=r"e\.txt: 1 word token"):
        get_prepare("language_modeling").prepare(lm_data(folder, units="word"), seed=0)


@pytest.mark.parametrize("units", ["char", "word"])
def test_prepare_writes_whole_streams_and_blocks_that_encode_back(
    tmp_path: Path, units: str
) -> None:
    prepared = get_prepare("language_modeling").prepare(
        lm_data(corpus(tmp_path), units=units, block_tokens=5), seed=0
    )
    out = tmp_path / "processed"
    out.mkdir()
    for name, write in prepared.files.items():
        write(out / name)
    vocab = TokenVocabulary.load(out / prepared.meta.vocab)  # type: ignore[attr-defined]
    assert vocab.unit == units and prepared.meta.n_outputs == len(vocab)
    names, ids = load_streams(out / streams_file("test"))
    assert names == ["d"] and ids[0].tolist() == vocab.encode(TEXTS["d"]).tolist()
    blocks = json.loads((out / blocks_file("test")).read_text())
    test = prepared.splits["test"]
    assert len(blocks) == len(test) == -(-len(ids[0]) // 5)
    for block, sequence in zip(blocks, test.sequences, strict=True):
        assert vocab.encode(block["text"]).tolist() == sequence.tolist()
    # one next-token label per step, none after the document's last token
    labels = np.concatenate(list(test.labels))
    assert labels.tolist() == [*ids[0][1:].tolist(), -100]
    assert prepared.report["n_documents"] == {"train": 2, "val": 1, "test": 1}


# -- the system's stateful windows --------------------------------------------------------------


def _system() -> LitSequenceModel:
    torch.manual_seed(0)
    network = {"cell": "gru", "hidden_size": 6, "num_layers": 1, "bidirectional": False,
               "dropout": 0.0, "vocab_size": 9, "embedding_dim": 4, "per_step": True,
               "encoder": "linear"}  # fmt: skip
    return LitSequenceModel(
        n_features=0, n_outputs=9, network=network, objective={"kind": "next_token"},
        lr=0.01, weight_decay=0.0, scheduler="none", max_epochs=1,
    ).eval()  # fmt: skip


def _nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1))


def test_the_state_is_carried_between_windows_and_zeroed_where_a_document_starts() -> None:
    system = _system()
    tokens, targets = torch.randint(2, 9, (2, 8)), torch.randint(2, 9, (2, 8))
    starts, carry = torch.tensor([True, True]), torch.tensor([False, False])
    system.on_train_epoch_start()
    system._stream_window((tokens[:, :4], starts, targets[:, :4]), "train")
    state = system._streams["train"]
    assert state is not None and not state[0].requires_grad  # detached at the window's edge
    loss, real = system._stream_window((tokens[:, 4:], carry, targets[:, 4:]), "train")
    whole, _ = system.net.forward_with_state(tokens, torch.tensor([8, 8]))
    assert real == 8 and torch.allclose(loss, _nll(whole[:, 4:], targets[:, 4:]), atol=1e-6)
    # row 1 starts a new document in the second window: its state is zeroed, row 0's carried
    system._streams["train"] = state
    loss, _ = system._stream_window(
        (tokens[:, 4:], torch.tensor([False, True]), targets[:, 4:]), "train"
    )
    row0, _ = system.net.forward_with_state(
        tokens[:1, 4:], torch.tensor([4]), tuple(s[:, :1] for s in state)
    )
    row1, _ = system.net.forward_with_state(tokens[1:, 4:], torch.tensor([4]))
    assert torch.allclose(loss, _nll(torch.cat([row0, row1]), targets[:, 4:]), atol=1e-6)
    # validation keeps its own state, started afresh each validation epoch
    system.on_validation_epoch_start()
    assert system._streams["val"] is None and system._streams["train"] is not None


def test_a_window_without_targets_takes_no_step() -> None:
    system = _system()
    system.on_train_epoch_start()
    empty = torch.full((2, 4), -100)
    assert (
        system._stream_training_step(
            (torch.zeros(2, 4, dtype=torch.int64), torch.tensor([True, True]), empty)
        )
        is None
    )


def test_kneser_ney_orders_stop_where_their_keys_would_overflow() -> None:
    from seqops.tasks.language_modeling.evaluate import kn_orders

    assert kn_orders(86) == range(2, 8)  # characters
    assert kn_orders(2000) == range(2, 6) and kn_orders(10_000) == range(2, 5)
    assert all(10_000**order < 2**63 for order in kn_orders(10_000))


# -- per-block scores, the paired test, the sampler ---------------------------------------------


def test_block_scores_are_the_metric_of_the_sums_and_the_sign_test_sees_the_worse() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(50, 100, 40).astype(float)
    good = np.stack([tokens * 1.0, tokens], axis=1)
    bad = np.stack([tokens * 1.3, tokens], axis=1)
    assert metric_value("char", good) == pytest.approx(1.0 / np.log(2))
    assert metric_value("word", good) == pytest.approx(np.e)
    scores = BlockPairedScores("error", bad, {"kneser_ney": good}, units="char")
    p_value, worse, _ = scores.worse_than("kneser_ney")
    assert worse and p_value < 1e-6 and scores.metric == "bits_per_char"
    low, high = scores.interval("kneser_ney")
    assert 0 < low <= high
    assert not no_regression(bad, good, 0.05, "char").passed
    assert no_regression(good, bad, 0.05, "char").passed


def test_the_sampler_is_seeded_and_never_draws_padding_or_unknown() -> None:
    logits = np.array([50.0, 40.0, 1.0, 3.0, 2.0])
    top1 = Sampling(5, temperature=1.0, top_k=1)
    assert {draw(logits, top1, np.random.default_rng(s)) for s in range(20)} == {3}
    warm = Sampling(5, temperature=5.0, top_k=2)
    drawn = [draw(logits, warm, np.random.default_rng(7)) for _ in range(3)]
    assert set(drawn) <= {3, 4} and drawn == [draw(logits, warm, np.random.default_rng(7))] * 3
    for bad, message in (({"max_tokens": 0}, "--max-tokens 0"),
                         ({"max_tokens": 1, "temperature": -1.0}, "--temperature"),
                         ({"max_tokens": 1, "top_k": 0}, "--top-k 0")):  # fmt: skip
        with pytest.raises(DataError, match=message):
            Sampling(**bad)  # type: ignore[arg-type]
