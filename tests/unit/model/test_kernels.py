"""The random-kernel path (`model.kernel_features`): features that padding never changes and
that ONNX Runtime computes exactly as torch does, the closed-form ridge head, its fit before
training, and the config and network checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import Config, load_config, parse_config
from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.errors import ConfigError
from seqops.layout import PROCESSED_META, split_file
from seqops.model.kernels import (
    N_PATTERNS,
    STEP_BUDGET,
    RandomKernels,
    count_by_comparison,
    count_by_search,
    dilations,
    fit_ridge,
    searches,
)
from seqops.model.network import EnsembleNet, SequenceNet, fitted_splits
from seqops.model.runtime import load_network
from seqops.model.training import build_model, fit, fit_final, fit_kernel_path
from seqops.onnx_export import export_onnx
from seqops.tasks import read_meta
from seqops.tasks.classification.evaluate import minirocket_baseline
from seqops.tasks.parts.evaluate import get_evaluate
from tests.unit.bundles import classification_meta

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def batch(
    n: int = 12, time: int = 40, features: int = 3, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """`n` sequences of 10..`time` steps, zero after each length (one of full length)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, time, features, generator=generator)
    lengths = torch.randint(10, time + 1, (n,), generator=generator)
    lengths[0] = time
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    return x, lengths


def fitted_net(
    features: int = 3, outputs: int = 4, kernel_features: int = 1000
) -> tuple[SequenceNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = SequenceNet(features, outputs, hidden_size=8, num_layers=1,
                      kernel_features=kernel_features, kernel_length=40)  # fmt: skip
    x, lengths = batch(features=features)
    assert net.kernels is not None and net.kernel_head is not None
    z = net.kernels.fit(x, lengths)
    targets = -np.ones((len(x), outputs))
    targets[np.arange(len(x)), np.arange(len(x)) % outputs] = 1.0
    fit_ridge(z, targets, net.kernel_head)
    return net.eval(), x, lengths


def test_features_are_sized_from_the_kernels_dilations_and_biases() -> None:
    kernels = RandomKernels(2, 10_000, max_length=200)
    assert kernels.dilations == dilations(200, 10_000) and kernels.dilations[0] == 1
    assert max(kernels.dilations) * 8 <= 199  # a kernel spans the longest sequence at most
    assert kernels.n_out == N_PATTERNS * len(kernels.dilations) * kernels.n_biases <= 10_000
    assert kernels.n_out > 9_000
    # Each kernel at each dilation reads at least one channel, with MiniRocket's weights.
    weight = kernels.weight
    assert ((weight != 0).flatten(2).any(dim=-1)).all()
    assert set(weight.unique().tolist()) <= {-1.0, 0.0, 2.0}
    assert (weight.sum(dim=-1) == 0).all()  # six -1s and three 2s
    # Long series get fewer features: features x longest length stays within the budget.
    long = RandomKernels(1, 10_000, max_length=1460)
    assert long.n_out * 1460 <= STEP_BUDGET and long.n_out >= N_PATTERNS
    assert RandomKernels(1, 10_000, max_length=200).n_out > 9_000
    with pytest.raises(ValueError, match="kernel_features must be 0 or at least 84"):
        RandomKernels(2, 50, max_length=100)


@pytest.mark.parametrize("kernel_features", [1000, 10_000])  # counted by comparison, by search
def test_padding_never_changes_a_sequences_features_or_output(kernel_features: int) -> None:
    net, x, lengths = fitted_net(kernel_features=kernel_features)
    with torch.no_grad():
        together = net(x, lengths)
        alone = torch.cat(
            [net(x[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths)]
        )
        # Garbage in the padding changes nothing either: the kernels read real steps only.
        noisy = x.clone()
        for i, n in enumerate(lengths):
            noisy[i, n:] = 7.0
        assert net.kernels is not None
        assert torch.equal(net.kernels(noisy, lengths), net.kernels(x, lengths))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_features_are_proportions_of_real_steps_above_each_bias() -> None:
    kernels = RandomKernels(1, 200, max_length=30)
    x, lengths = batch(n=6, time=30, features=1)
    kernels.fit(x, lengths)
    raw = kernels.ppv(x, lengths)
    assert ((raw >= 0) & (raw <= 1)).all()
    # A proportion over `length` real steps is a multiple of 1 / length.
    counts = raw * lengths.unsqueeze(1)
    torch.testing.assert_close(counts, counts.round(), atol=1e-4, rtol=0)
    # Biases sit between the grid's multiples, so no kernel output can equal one.
    grid = kernels.bias * 1024
    torch.testing.assert_close(grid - grid.floor(), torch.full_like(grid, 0.5))


def test_counting_by_binary_search_equals_comparing_every_step() -> None:
    generator = torch.Generator().manual_seed(0)
    for batch_size, kernels, biases, steps in ((5, 3, 39, 26), (4, 2, 1, 100), (3, 4, 7, 9)):
        # Outputs on a coarse grid, biases on it too: ties, where `>` must not count.
        out = torch.randint(-8, 9, (batch_size, kernels, steps), generator=generator) / 4.0
        bias = torch.randint(-8, 9, (kernels, biases), generator=generator) / 4.0
        lengths = torch.randint(1, steps + 1, (batch_size,), generator=generator)
        real = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
        out[~real.unsqueeze(1).expand_as(out)] = 100.0  # padding above every bias: not counted
        by_search = count_by_search(out, bias, real)
        assert by_search.shape == (batch_size, kernels, biases)
        assert torch.equal(by_search.to(out.dtype), count_by_comparison(out, bias, real))
    # Torch searches where rows have many biases for their length, compares otherwise.
    assert searches(39, 26) and searches(29, 40)
    assert not searches(9, 100) and not searches(2, 427) and not searches(1, 1460)


@pytest.mark.parametrize("kernel_features", [1000, 10_000])
def test_onnx_runtime_gives_the_same_answers_on_padded_batches(
    tmp_path: Path, kernel_features: int
) -> None:
    # 1,000 features over 40 steps: torch compares, as the graph does; 10,000: torch searches.
    net, x, lengths = fitted_net(kernel_features=kernel_features)
    assert net.kernels is not None
    assert searches(net.kernels.n_biases, x.shape[1]) == (kernel_features == 10_000)
    path = tmp_path / "kernels.onnx"
    expected = contract.expected_shapes(contract.INPUT, 3, contract.OUTPUT, [contract.BATCH, 4], {})
    export_onnx(net, path, Config().export.opset, contract.INPUT, contract.OUTPUT, expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {contract.INPUT: x.numpy(), contract.LENGTHS: lengths.numpy()})[0]
    with torch.no_grad():
        want = net(x, lengths).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_the_ridge_head_recovers_a_linear_target() -> None:
    rng = np.random.default_rng(0)
    features = torch.tensor(rng.standard_normal((200, 20)), dtype=torch.float32)
    coef = rng.standard_normal((20, 2))
    head = torch.nn.Linear(20, 2)
    alpha = fit_ridge(features, features.double().numpy() @ coef + 3.0, head)
    assert alpha == pytest.approx(1e-3)  # no noise: the smallest penalty wins
    np.testing.assert_allclose(head.weight.detach().numpy(), coef.T, atol=1e-3)
    np.testing.assert_allclose(head.bias.detach().numpy(), [3.0, 3.0], atol=1e-3)


def test_training_starts_from_the_fitted_kernel_model(processed: Path, tmp_path: Path) -> None:
    overrides = {
        "model.kernel_features": 500,
        "model.hidden_size": 8,
        "model.num_layers": 1,
        "train.max_epochs": 2,
        "train.patience": 2,
        "train.batch_size": 8,
        "train.epoch_examples": 0,
        "train.refit_max_examples": 0,
    }
    cfg = load_config(PARAMS, overrides=overrides)
    model = build_model(cfg, read_meta(processed / PROCESSED_META), processed)
    net = model.net
    assert net.kernels is not None and net.kernel_head is not None
    assert not any(p.requires_grad for p in net.kernel_head.parameters())
    assert torch.count_nonzero(net.head.weight) == 0  # the recurrent head starts silent
    train = SequenceSet.load(processed / split_file("train"))
    x, lengths = pad_batch(train.sequences)
    with torch.no_grad():
        start = net.eval()(x, lengths)
    # At the start the network answers what the ridge model on the kernel features answers,
    # and that model fits these separable training classes.
    assert (start.argmax(dim=1).numpy() == train.labels).mean() == 1.0

    result = fit(cfg, processed, tmp_path / "ckpt", progress_bar=False)
    trained, hparams = load_network(result.best_checkpoint)
    assert hparams["network"]["kernel_features"] == 500
    assert trained.kernel_head is not None
    torch.testing.assert_close(trained.kernel_head.weight, net.kernel_head.weight)


def test_config_and_network_refuse_what_the_kernel_path_cannot_read() -> None:
    with pytest.raises(ConfigError, match=r"model.kernel_features = 50: 0 \(off\) or at least 84"):
        parse_config({"model": {"kernel_features": 50}})
    with pytest.raises(ValueError, match="kernel_features reads float inputs"):
        SequenceNet(0, 2, vocab_size=100, kernel_features=1000, kernel_length=10)
    with pytest.raises(ValueError, match="kernel_features reads float inputs"):
        SequenceNet(3, 2, per_step=True, kernel_features=1000, kernel_length=10)
    # Off by default: a network and its state dict as before.
    assert not any("kernel" in key for key in SequenceNet(3, 2).state_dict())


def test_without_the_recurrent_path_the_kernel_model_is_the_whole_graph(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SequenceNet(3, 4, hidden_size=8, num_layers=1, kernel_features=1000, kernel_length=40,
                      recurrent=False)  # fmt: skip
    x, lengths = batch()
    assert net.kernels is not None and net.kernel_head is not None
    net.kernels.fit(x, lengths)
    net.kernel_head.weight.data.normal_()
    with torch.no_grad():
        net.kernel_scale.fill_(2.5)
        want = 2.5 * net.kernel_head(net.kernels(x, lengths))
        got = net.eval()(x, lengths)
        net.head.weight.fill_(9.0)  # the recurrent head is never read
        assert torch.equal(net(x, lengths), got)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    path = tmp_path / "kernels.onnx"
    expected = contract.expected_shapes(contract.INPUT, 3, contract.OUTPUT, [contract.BATCH, 4], {})
    export_onnx(net, path, Config().export.opset, contract.INPUT, contract.OUTPUT, expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"LSTM", "GRU", "RNN", "Scan", "Loop"}  # nothing recurrent exported
    onnx_out = session.run(None, {contract.INPUT: x.numpy(), contract.LENGTHS: lengths.numpy()})
    np.testing.assert_allclose(onnx_out[0], got.numpy(), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="recurrent=False keeps the kernel path alone"):
        SequenceNet(3, 4, recurrent=False)


def test_a_kernel_only_model_keeps_its_scale_and_refits_its_ridge_on_train_and_val(
    processed: Path, tmp_path: Path
) -> None:
    overrides = {
        "model.kernel_features": 500,
        "model.recurrent": False,
        "train.max_epochs": 2,
        "train.patience": 2,
        "train.batch_size": 8,
        "train.refit_max_examples": 0,
    }
    cfg = load_config(PARAMS, overrides=overrides)
    validated = fit(cfg, processed, tmp_path / "fit", progress_bar=False)
    kept = fit_final(cfg, processed, tmp_path / "final", progress_bar=False)
    assert kept.refit_examples == 32  # 24 train + 8 val
    assert (kept.best_epoch, kept.best_score) == (validated.best_epoch, validated.best_score)
    net, before = kept.model.net, validated.model.net
    assert fitted_splits(net) == ("train", "val") and fitted_splits(before) == ("train", "val")
    torch.testing.assert_close(net.kernel_scale, before.kernel_scale, atol=0, rtol=0)
    # The ridge is the one a fresh fit on train + val gives, not the train split's ...
    both = SequenceSet.load_splits(processed, ("train", "val"))
    fresh = build_model(cfg, read_meta(processed / PROCESSED_META), processed)
    fit_kernel_path(fresh, both)
    torch.testing.assert_close(net.kernel_head.weight, fresh.net.kernel_head.weight)
    assert not torch.allclose(net.kernel_head.weight, before.kernel_head.weight)
    # ... and the checkpoint the train stage copies holds it.
    saved, _ = load_network(kept.best_checkpoint)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[name], value, atol=0, rtol=0)


def test_the_baseline_learns_from_the_splits_the_model_learned_from(tmp_path: Path) -> None:
    """MiniRocket beside a kernel-only model is fitted on train + val, as the model's ridge
    is; beside any other model, on the training split. Here the validation split holds three
    times the training split's examples, labelled the other way round, so the two fits answer
    differently."""
    processed = tmp_path / "processed"
    processed.mkdir()
    rng = np.random.default_rng(0)
    for name, n, flip in (("train", 8, 0), ("val", 24, 1), ("test", 8, 0)):
        labels = np.arange(n) % 2
        seqs = [
            (rng.standard_normal((12, 2)) * 0.1 + 3.0 * (y ^ flip)).astype(np.float32)
            for y in labels
        ]
        SequenceSet(seqs, labels).save(processed / split_file(name))
    classification_meta(["a", "b"], ["no", "yes"]).write(processed / PROCESSED_META)
    evaluate = get_evaluate("sequence_classification")
    meta = read_meta(processed / PROCESSED_META)
    test = SequenceSet.load(processed / split_file("test"))
    on_train = minirocket_baseline(SequenceSet.load_splits(processed, ("train",)), test)
    on_both = minirocket_baseline(SequenceSet.load_splits(processed, ("train", "val")), test)
    assert not np.array_equal(on_train, on_both)
    kernel_only = SequenceNet(2, 2, kernel_features=500, kernel_length=8, recurrent=False)
    for net, splits in (
        (kernel_only, ("train", "val")),
        (SequenceNet(2, 2, kernel_features=500, kernel_length=8), ("train",)),
        (SequenceNet(2, 2), ("train",)),
    ):
        assert fitted_splits(net) == splits
        found = evaluate.evaluate(net.eval(), processed, meta).baselines["minirocket"]
        want = minirocket_baseline(SequenceSet.load_splits(processed, splits), test)
        np.testing.assert_array_equal(found, want)
    assert fitted_splits(EnsembleNet([kernel_only] * 2, probabilities=True)) == ("train", "val")
    assert fitted_splits(EnsembleNet([kernel_only, SequenceNet(2, 2)], probabilities=True)) == (
        "train",
    )
