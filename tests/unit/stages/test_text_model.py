"""Text configuration and model building: the SST-2 preset validates, text-only keys are
checked, pretrained word vectors land in the embedding (frozen or fine-tuned)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqops.config import load_config, parse_config
from seqops.errors import ConfigError, DataError
from seqops.stages.train import build_model

REPO = Path(__file__).resolve().parents[3]
VOCAB = {"[PAD]": 0, "[UNK]": 1, "fine": 2, "dull": 3, "film": 4}


def test_sst2_preset_is_valid() -> None:
    cfg = load_config(REPO / "params" / "sst2.yaml")
    assert cfg.data.task == "text_classification" and cfg.data.dataset is None
    assert cfg.data.val_path is not None and cfg.data.test_path is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"task": "text_classification"},  # dataset: JapaneseVowels by default
            "data.task=text_classification reads data.path; set dataset: null",
        ),
        (
            {"dataset": None, "path": "x.csv", "val_path": "v.csv"},
            "data.val_path / data.test_path are for text_classification only",
        ),
        (
            {
                "task": "text_classification",
                "dataset": None,
                "path": "x",
                "tokenizer": {"kind": "bpe"},
            },
            "data.tokenizer.kind = 'bpe'",
        ),
    ],
)
def test_text_keys_are_checked(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"data": data})
    assert message in str(err.value)


def _cfg(tmp_path: Path, **model: object) -> object:
    return parse_config(
        {
            "data": {"task": "text_classification", "dataset": None, "path": "x.txt"},
            "model": {"embedding_dim": 3, "hidden_size": 4, **model},
        }
    )


@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_vectors_fill_the_embedding(tmp_path: Path, freeze: bool) -> None:
    vectors = tmp_path / "glove.txt"
    vectors.write_text("fine 1 2 3\nfilm 4 5 6\nunrelated 7 8 9\n")
    cfg = _cfg(tmp_path, embeddings_path=str(vectors), freeze_embeddings=freeze)
    model = build_model(cfg, 0, 2, vocab=VOCAB)  # type: ignore[arg-type]
    weight = model.net.embedding.weight  # type: ignore[union-attr]
    torch.testing.assert_close(weight[2], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(weight[4], torch.tensor([4.0, 5.0, 6.0]))
    assert weight[0].abs().sum() == 0  # padding row
    assert weight.requires_grad is not freeze
    assert model.hparams["network"]["vocab_size"] == len(VOCAB)
    assert "embeddings_path" not in model.hparams["network"]


def test_vectors_of_another_size_are_rejected(tmp_path: Path) -> None:
    vectors = tmp_path / "glove.txt"
    vectors.write_text("fine 1 2\n")
    with pytest.raises(DataError, match=r"line 1 has 2 values; model.embedding_dim is 3"):
        build_model(_cfg(tmp_path, embeddings_path=str(vectors)), 0, 2, vocab=VOCAB)  # type: ignore[arg-type]


def test_float_models_keep_their_hyperparameters() -> None:
    model = build_model(parse_config({}), 12, 9)
    assert set(model.hparams["network"]) == {
        "cell", "hidden_size", "num_layers", "bidirectional", "dropout", "pooling",
    }  # fmt: skip
    assert model.net.embedding is None and model.net.encoder is not None
