"""Text models end to end through the bundle: `tokens` ONNX contract and parity, raw-text
predictions equal PyTorch's, and the documented behaviour for Unicode, empty and over-long
texts; `seqops predict` on raw text stays torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import DataConfig
from seqops.data.sequences import SequenceSet
from seqops.data.text import TextEncoder, train_tokenizer
from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.onnx_export import check_parity, parity_batches, seal_bundle
from seqops.serving import Predictor
from seqops.tasks import read_bundle
from seqops.tasks.parts.serve import get_serve
from seqops.tasks.text.serve import TextCodec
from seqops.tasks.text.task import TOKENIZER_FILE, TextMeta
from tests.conftest import assert_predict_succeeds_without_torch
from tests.unit.bundles import expected_shapes, text_meta, write_bundle

TRAIN = ["a fine warm film", "a dull cold film", "fine acting but a dull plot", "warm and fine"]
LABELS = ["neg", "pos"]
MAX_LEN = 8


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(
        train_tokenizer(
            TRAIN, kind="word", normalization="nfkc", lowercase=True, vocab_size=50,
            min_frequency=1, max_len=MAX_LEN,
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def net(encoder: TextEncoder) -> SequenceNet:
    torch.manual_seed(0)
    return SequenceNet(
        0, 2, cell="lstm", hidden_size=6, num_layers=1, bidirectional=True, pooling="max",
        vocab_size=encoder.vocab_size, embedding_dim=5,
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def meta(encoder: TextEncoder) -> TextMeta:
    return text_meta(LABELS, encoder.vocab_size, MAX_LEN, text_column="review", max_train_length=6)


@pytest.fixture(scope="module")
def bundle(
    tmp_path_factory: pytest.TempPathFactory, net: SequenceNet, encoder: TextEncoder, meta: TextMeta
) -> Path:
    models = write_bundle(tmp_path_factory.mktemp("models"), net, meta, DataConfig(), 64)
    assert get_serve(meta.task).bundle_files(meta) == [TOKENIZER_FILE]
    encoder.tokenizer.save(str(models / TOKENIZER_FILE))
    seal_bundle(models, read_bundle(models / contract.PREPROCESSING_FILE))
    return models


def torch_probs(net: SequenceNet, encoder: TextEncoder, texts: list[str]) -> np.ndarray:
    out = []
    for ids in encoder.encode(texts):
        with torch.no_grad():
            logits = net(torch.from_numpy(ids)[None], torch.tensor([len(ids)]))
        out.append(torch.softmax(logits, -1)[0].numpy())
    return np.stack(out)


def test_graph_takes_int64_tokens_with_symbolic_batch_and_time(
    bundle: Path, meta: TextMeta
) -> None:
    model = onnx.load(str(bundle / contract.MODEL_FILE))
    assert expected_shapes(meta) == contract.expected_shapes(
        contract.TOKENS, 0, contract.OUTPUT, [contract.BATCH, 2]
    )
    contract.check_graph(model, expected_shapes(meta))
    assert contract.graph_shapes(model)[contract.TOKENS] == [contract.BATCH, contract.TIME]
    as_floats = contract.expected_shapes(contract.INPUT, 0, contract.OUTPUT, [contract.BATCH, 2])
    with pytest.raises(contract.ContractError, match=r"expected inputs \['x', 'lengths'\]"):
        contract.check_graph(model, as_floats)


def test_onnx_matches_pytorch_on_padded_token_batches(
    bundle: Path, net: SequenceNet, encoder: TextEncoder, meta: TextMeta
) -> None:
    test = SequenceSet(encoder.encode(TRAIN), np.array([1, 0, 0, 1]))
    batches = parity_batches(test, [1, 3, 8], 40)
    task = get_serve(meta.task)
    result = check_parity(net, Predictor.load(bundle), batches, atol=1e-5, task=task)
    assert result.passed, result
    assert result.argmax_agreement == 1.0
    assert [8, 40] not in result.shapes_checked  # the long batch is (2, 40)
    assert [2, 40] in result.shapes_checked


def test_raw_text_predictions_match_pytorch(
    bundle: Path, net: SequenceNet, encoder: TextEncoder
) -> None:
    texts = ["a fine film", "dull", "warm and fine acting but a dull cold plot"]
    got = Predictor.load(bundle).predict_frame(pd.DataFrame({"review": texts, "id": [7, 8, 9]}))
    assert list(got.columns) == ["id", "label", "p_neg", "p_pos"]
    assert got["id"].tolist() == [7, 8, 9]
    probs = got[["p_neg", "p_pos"]].to_numpy()
    np.testing.assert_allclose(probs, torch_probs(net, encoder, texts), atol=1e-6)
    assert got["label"].tolist() == [LABELS[i] for i in probs.argmax(axis=1)]


def test_unicode_is_normalised_and_unknown_words_become_unk(bundle: Path) -> None:
    predictor = Predictor.load(bundle)
    frame = pd.DataFrame({"review": ["ＦＩＮＥ Film", "fine film", "fine film 🎬 überraschend"]})
    got = predictor.predict_frame(frame)
    assert got["id"].tolist() == [0, 1, 2]  # row numbers without an id column
    np.testing.assert_array_equal(got.iloc[0, 2:], got.iloc[1, 2:])
    assert isinstance(predictor.codec, TextCodec)
    unknown = predictor.codec.encoder.encode(["fine film 🎬 überraschend"])[0]
    assert unknown.tolist()[2:] == [1, 1]


def test_over_long_text_is_truncated_to_max_len_tokens(bundle: Path) -> None:
    words = ("fine dull warm cold " * 10).split()
    frame = pd.DataFrame({"review": [" ".join(words), " ".join(words[:MAX_LEN])]})
    got = Predictor.load(bundle).predict_frame(frame)
    np.testing.assert_array_equal(got.iloc[0, 2:], got.iloc[1, 2:])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"review": ["fine", ""]}), "request: column 'review' is empty at row 1"),
        (pd.DataFrame({"review": ["fine", "  \t"]}), "request: column 'review' is empty at row 1"),
        (pd.DataFrame({"review": ["fine", None]}), "request: column 'review' is empty at row 1"),
        (
            pd.DataFrame({"review": ["fine", 3.5]}),
            "column 'review' must hold text; row 1 holds 3.5",
        ),
        (
            pd.DataFrame({"text": ["fine"]}),
            "request: missing column 'review' (the text to classify)",
        ),
        (pd.DataFrame({"review": []}), "request: no rows (expected one row per text)"),
    ],
)
def test_bad_text_requests_are_rejected_naming_the_row(
    bundle: Path, frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(DataError) as info:
        Predictor.load(bundle).predict_frame(frame, where="request")
    assert message in str(info.value)


def test_predict_command_on_a_text_file_never_imports_torch(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a fine film\nnaïve, dull — cold\n", encoding="utf-8")
    args = ["predict", "--model", str(bundle), "--input", str(tmp_path / "in.txt")]
    args += ["--output", str(tmp_path / "out.csv")]
    assert_predict_succeeds_without_torch(args)
    got = pd.read_csv(tmp_path / "out.csv")
    frame = pd.DataFrame({"review": ["a fine film", "naïve, dull — cold"]})
    pd.testing.assert_frame_equal(got, Predictor.load(bundle).predict_frame(frame), atol=1e-6)
