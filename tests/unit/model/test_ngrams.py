"""The n-gram path of a text network (`seqops.model.ngrams`): its scores are the linear model
on the sparse features it is fitted on, padding never reaches them, ONNX Runtime computes the
same, the logistic regression it holds is sklearn's, and a text model built with
`model.ngram_buckets` trains its recurrent path as it would without it, then weighs the two on
validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import Config, parse_config
from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.errors import ConfigError
from seqops.layout import PROCESSED_META, split_file
from seqops.model.network import EnsembleNet, SequenceNet
from seqops.model.ngrams import (
    BIGRAM_PRIME,
    MAX_WEIGHT,
    NgramPath,
    fit_ngram_path,
    mixing_weights,
    ngram_features,
)
from seqops.model.runtime import load_network
from seqops.model.streaming import streaming_reason
from seqops.model.training import build_model, fit_final
from seqops.onnx_export import export_onnx
from seqops.stages.train import _path_weights
from seqops.tasks import get_task
from seqops.tasks.text.task import TextMeta
from seqops.tasks.text.train import _FITTED

VOCAB, BUCKETS = 40, 64


def sentences(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` token-id sentences of 1..12 tokens (ids 2..VOCAB-1); label 1 when token 7 is in
    the sentence, which a linear model over unigram counts separates."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    seqs = []
    for y in labels:
        ids = rng.integers(8, VOCAB, int(rng.integers(1, 13)))
        if y:
            ids[rng.integers(0, len(ids))] = 7
        seqs.append(ids.astype(np.int64))
    return seqs, labels


def random_path(seed: int = 0) -> NgramPath:
    torch.manual_seed(seed)
    path = NgramPath(VOCAB, BUCKETS, 3)
    with torch.no_grad():
        for weight in (path.unigrams.weight, path.bigrams.weight, path.bias):
            weight.normal_()
    return path.eval()


def test_scores_are_the_linear_model_on_the_sparse_features() -> None:
    path = random_path()
    seqs, _ = sentences(20, seed=1)
    x, lengths = pad_batch(seqs)
    with torch.no_grad():
        got = path(x, lengths).numpy()
    table = torch.cat([path.unigrams.weight, path.bigrams.weight]).numpy()
    features = ngram_features(seqs, VOCAB, BUCKETS)
    want = features @ table + path.bias.numpy()  # type: ignore[operator]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The hash: a pair (a, b) lands in bucket (a * prime + b) % buckets.
    one = ngram_features([np.array([3, 5])], VOCAB, BUCKETS).toarray()[0]  # type: ignore[attr-defined]
    assert one[3] == one[5] == 0.5
    assert one[VOCAB + (3 * BIGRAM_PRIME + 5) % BUCKETS] == 0.5 and one.sum() == 1.5


def test_padding_never_reaches_the_scores() -> None:
    path = random_path()
    seqs, _ = sentences(10, seed=2)
    x, lengths = pad_batch(seqs)
    wider = torch.cat([x, torch.full((len(seqs), 5), 9)], dim=1)  # junk after each length
    with torch.no_grad():
        batched = path(x, lengths)
        torch.testing.assert_close(path(wider, lengths), batched)
        for i, s in enumerate(seqs):
            alone = path(torch.from_numpy(s)[None], torch.tensor([len(s)]))
            torch.testing.assert_close(alone[0], batched[i])


def test_onnx_runtime_gives_the_same_scores_on_padded_batches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SequenceNet(0, 3, vocab_size=VOCAB, embedding_dim=6, hidden_size=8,
                      ngram_buckets=BUCKETS)  # fmt: skip
    assert net.ngrams is not None
    with torch.no_grad():
        net.head.weight.normal_()  # a recurrent path that says something too
        net.ngrams.unigrams.weight.normal_()
        net.ngrams.bigrams.weight.normal_()
        net.ngram_scale.fill_(0.7)  # as after training: both paths weighed
        net.recurrent_scale.fill_(1.3)
    net.eval()
    path = tmp_path / "ngrams.onnx"
    expected = contract.expected_shapes(contract.TOKENS, 0, contract.OUTPUT, [contract.BATCH, 3])
    export_onnx(net, path, Config().export.opset, contract.TOKENS, contract.OUTPUT, expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (3, 4):  # one-token sentences included
        x, lengths = pad_batch(sentences(16, seed)[0])
        feeds = {contract.TOKENS: x.numpy(), contract.LENGTHS: lengths.numpy()}
        got = session.run(None, feeds)[0]
        with torch.no_grad():
            want = net(x, lengths).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_the_fitted_path_is_sklearns_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    train, y_train = sentences(200, seed=5)
    val, y_val = sentences(60, seed=6)
    path = NgramPath(VOCAB, BUCKETS, 2).eval()
    c = fit_ngram_path(path, train, y_train, val, y_val)
    x, lengths = pad_batch(val)
    with torch.no_grad():
        probabilities = torch.softmax(path(x, lengths), dim=1).numpy()
    reference = LogisticRegression(C=c, max_iter=2000).fit(
        ngram_features(train, VOCAB, BUCKETS), y_train
    )
    want = reference.predict_proba(ngram_features(val, VOCAB, BUCKETS))
    np.testing.assert_allclose(probabilities, want, atol=1e-5)
    assert (probabilities.argmax(axis=1) == y_val).mean() >= 0.95  # token 7 decides


def _prepared_text(tmp_path: Path) -> tuple[TextMeta, Path]:
    processed = tmp_path / "processed"
    processed.mkdir()
    for name, n, seed in (("train", 120, 7), ("val", 40, 8), ("test", 40, 9)):
        SequenceSet(*sentences(n, seed)).save(processed / split_file(name))
    meta = TextMeta(
        feature_names=[],
        label_names=["neg", "pos"],
        n_outputs=2,
        max_train_length=12,
        vocab_size=VOCAB,
        max_len=12,
        text_column="text",
    )
    meta.write(processed / PROCESSED_META)
    return meta, processed


def _text_cfg(tmp_path: Path, **overrides: object) -> Config:
    return parse_config(
        {
            "data": {"task": "text_classification", "dataset": None, "path": "x.txt"},
            "model": {"embedding_dim": 4, "hidden_size": 4, "ngram_buckets": BUCKETS},
            "train": {"max_epochs": 2, "batch_size": 16, "epoch_examples": 0, "threads": 1},
            **overrides,
        }
    )


def test_the_path_is_fitted_and_silent_while_the_recurrent_network_trains(
    tmp_path: Path,
) -> None:
    meta, processed = _prepared_text(tmp_path)
    cfg = _text_cfg(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg, meta, processed)
    assert model.hparams["network"]["ngram_buckets"] == BUCKETS  # what a checkpoint rebuilds
    net = model.net.eval()
    assert net.ngrams is not None and net.ngram_scale.item() == 0.0
    assert net.recurrent_scale.item() == 1.0
    fixed = [*net.ngrams.parameters(), net.ngram_scale, net.recurrent_scale]
    assert not any(p.requires_grad for p in fixed)
    val = SequenceSet.load(processed / split_file("val"))
    x, lengths = pad_batch(val.sequences)
    with torch.no_grad():
        assert (net.ngrams(x, lengths).argmax(dim=1).numpy() == val.labels).mean() >= 0.9
    # Building the path drew no random numbers: the recurrent network is the one built
    # without it, weight for weight (and trains the same: the path's weight is 0).
    torch.manual_seed(0)
    plain = build_model(_text_cfg(tmp_path, model={"embedding_dim": 4, "hidden_size": 4}),
                        meta, processed).net  # fmt: skip
    for name, weight in plain.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], weight)
    # A second model from the same splits (a tuning trial) reuses the fit.
    fitted = dict(_FITTED)
    again = build_model(cfg, meta, processed).net
    assert fitted == _FITTED
    assert again.ngrams is not None
    torch.testing.assert_close(again.ngrams.state_dict(), net.ngrams.state_dict())


def test_after_training_the_paths_get_the_weights_validation_prefers(tmp_path: Path) -> None:
    _, processed = _prepared_text(tmp_path)
    result = fit_final(_text_cfg(tmp_path), processed, tmp_path / "ckpt", progress_bar=False)
    net, _ = load_network(result.best_checkpoint)  # what export reads
    assert isinstance(net, SequenceNet) and net.ngrams is not None
    a, w = net.recurrent_scale.item(), net.ngram_scale.item()
    assert w > 0.0  # two epochs of a 4-wide LSTM need the n-grams
    val = SequenceSet.load(processed / split_file("val"))
    x, lengths = pad_batch(val.sequences)
    with torch.no_grad():
        ngram = net.ngrams(x, lengths)
        mixed = net(x, lengths)
        net.ngram_scale.zero_()
        net.recurrent_scale.fill_(1.0)
        recurrent = net(x, lengths)
    torch.testing.assert_close(mixed, a * recurrent + w * ngram)
    labels = torch.as_tensor(val.labels)

    def loss(a: float, w: float) -> float:
        return torch.nn.functional.cross_entropy(a * recurrent + w * ngram, labels).item()

    # The MLflow run records them (train/recurrent_weight, train/ngram_weight).
    assert _path_weights(result.model) == pytest.approx({
        "train/recurrent_weight": a, "train/ngram_weight": w})  # fmt: skip
    assert _path_weights(SequenceNet(3, 2)) == {}
    assert _path_weights(EnsembleNet([net, net], probabilities=True)) == {}  # train.ensemble
    nearby = [(a * 1.1, w), (a * 0.9, w), (a, w * 1.1), (a, w * 0.9), (1.0, 0.0)]
    within = [(min(x, MAX_WEIGHT), min(y, MAX_WEIGHT)) for x, y in nearby]  # the bounds
    assert loss(a, w) <= min(loss(*pair) for pair in within) + 1e-6


def test_the_mixing_weights_minimise_held_out_log_loss() -> None:
    from scipy.special import log_softmax

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    signal = np.stack([np.zeros(400), 2.0 * labels - 1.0], axis=1)
    recurrent = 3.0 * (signal + rng.normal(0, 1.0, (400, 2)))  # a noisy, overconfident view
    ngram = signal + rng.normal(0, 1.0, (400, 2))  # an independent one: worth adding
    grid = np.linspace(0.0, 2.0, 201)
    losses = np.array(
        [[-log_softmax(a * recurrent + w * ngram, axis=1)[np.arange(400), labels].mean()
          for w in grid] for a in grid]
    )  # fmt: skip
    best = np.unravel_index(int(np.argmin(losses)), losses.shape)
    a, w = mixing_weights(recurrent, ngram, labels)
    assert a < 0.6 and w > 0.3  # the overconfident view is shrunk, the other one added
    assert (a, w) == pytest.approx((grid[best[0]], grid[best[1]]), abs=0.011)
    # Scores that say nothing get (almost) no weight; a path is never given a negative one.
    assert mixing_weights(recurrent, rng.normal(0, 1.0, (400, 2)), labels)[1] < 0.1
    assert mixing_weights(recurrent, -ngram, labels)[1] == 0.0


def test_what_the_path_cannot_read_is_refused() -> None:
    with pytest.raises(ConfigError, match="ngram_buckets"):
        parse_config({"model": {"ngram_buckets": -1}})
    with pytest.raises(ValueError, match="ngram_buckets reads token ids"):
        SequenceNet(3, 2, ngram_buckets=BUCKETS)
    with pytest.raises(ValueError, match="ngram_buckets reads token ids"):
        SequenceNet(0, 2, vocab_size=VOCAB, per_step=True, ngram_buckets=BUCKETS)
    # Only text classification reads the key; other tasks drop it from their params.
    params = {"model.ngram_buckets": 8, "model.hidden_size": 4}
    assert get_task("forecasting").applicable(params) == {"model.hidden_size": 4}
    assert get_task("text_classification").applicable(params) == params
    # It does not stream, and off by default the network is as before.
    net = SequenceNet(0, 2, vocab_size=VOCAB, bidirectional=False, pooling="last",
                      ngram_buckets=BUCKETS)  # fmt: skip
    assert "n-gram path" in (streaming_reason(net) or "")
    assert not any("ngram" in key for key in SequenceNet(0, 2, vocab_size=VOCAB).state_dict())
