"""Text configuration and model building: the SST-2 preset validates, text-only keys are
checked, pretrained word vectors land in the embedding (frozen or fine-tuned) through the text
task's `init_model` (the vocabulary read from the prepared `tokenizer.json`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqops.config import Config, parse_config
from seqops.contracts import Scaler
from seqops.data.text import train_tokenizer
from seqops.errors import ConfigError, DataError
from seqops.model.training import build_model
from seqops.tasks.classification.task import ClassificationMeta
from seqops.tasks.text.task import TOKENIZER_FILE, TextMeta
from tests.conftest import preset_params

REPO = Path(__file__).resolve().parents[3]


def test_sst2_preset_is_valid() -> None:
    cfg = parse_config(preset_params("sst2"))
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


def _cfg(tmp_path: Path, **model: object) -> Config:
    return parse_config(
        {
            "data": {"task": "text_classification", "dataset": None, "path": "x.txt"},
            "model": {"embedding_dim": 3, "hidden_size": 4, **model},
        }
    )


def _processed(tmp_path: Path) -> tuple[TextMeta, Path, dict[str, int]]:
    """What prepare leaves for a text model: its metadata and `tokenizer.json` (the vocabulary
    the pretrained vectors are looked up in)."""
    processed = tmp_path / "processed"
    processed.mkdir()
    tokenizer = train_tokenizer(
        ["fine film", "dull film", "fine"], kind="word", normalization="nfkc", lowercase=True,
        vocab_size=50, min_frequency=1, max_len=8,
    )  # fmt: skip
    tokenizer.save(str(processed / TOKENIZER_FILE))
    vocab = tokenizer.get_vocab()
    meta = TextMeta(
        feature_names=[],
        label_names=["neg", "pos"],
        n_outputs=2,
        max_train_length=2,
        vocab_size=len(vocab),
        max_len=8,
        text_column="text",
    )
    return meta, processed, vocab


@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_vectors_fill_the_embedding(tmp_path: Path, freeze: bool) -> None:
    vectors = tmp_path / "glove.txt"
    vectors.write_text("fine 1 2 3\nfilm 4 5 6\nunrelated 7 8 9\n")
    cfg = _cfg(tmp_path, embeddings_path=str(vectors), freeze_embeddings=freeze)
    meta, processed, vocab = _processed(tmp_path)
    assert vocab["[PAD]"] == 0 and {"fine", "film"} <= set(vocab)
    model = build_model(cfg, meta, processed)
    weight = model.net.embedding.weight  # type: ignore[union-attr]
    torch.testing.assert_close(weight[vocab["fine"]], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(weight[vocab["film"]], torch.tensor([4.0, 5.0, 6.0]))
    assert weight[0].abs().sum() == 0  # padding row
    assert weight.requires_grad is not freeze
    assert model.hparams["network"]["vocab_size"] == len(vocab)
    assert "embeddings_path" not in model.hparams["network"]


def test_vectors_of_another_size_are_rejected(tmp_path: Path) -> None:
    vectors = tmp_path / "glove.txt"
    vectors.write_text("fine 1 2\n")
    meta, processed, _ = _processed(tmp_path)
    with pytest.raises(DataError, match=r"line 1 has 2 values; model.embedding_dim is 3"):
        build_model(_cfg(tmp_path, embeddings_path=str(vectors)), meta, processed)


def test_float_models_keep_their_hyperparameters(tmp_path: Path) -> None:
    meta = ClassificationMeta(
        feature_names=[f"f{i}" for i in range(12)],
        label_names=[f"c{i}" for i in range(9)],
        n_outputs=9,
        max_train_length=20,
        scaler=Scaler(mean=[0.0] * 12, std=[1.0] * 12),
    )
    model = build_model(parse_config({}), meta, tmp_path)
    assert set(model.hparams["network"]) == {
        "cell", "hidden_size", "num_layers", "bidirectional", "dropout", "recurrent_dropout",
        "locked_dropout", "pooling", "encoder", "encoder_kernel", "encoder_stride",
        "encoder_layers", "encoder_norm", "heads",
    }  # fmt: skip
    assert model.hparams["network"]["encoder"] == "linear"  # `auto` on 20 steps
    assert model.net.embedding is None and model.net.encoder is not None
    assert model.net.encoder.in_features == 12 and model.net.head.out_features == 9
