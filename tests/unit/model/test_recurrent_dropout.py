"""Recurrent dropout (weight-drop on the hidden-to-hidden weights) and locked dropout: fresh
masks per training batch, the plain cell in eval and in the exported ONNX graph."""

from __future__ import annotations

import itertools
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import onnx
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from seqops import onnx_contract as contract
from seqops.config import ModelConfig, TrainConfig
from seqops.data.sequences import SequenceSet
from seqops.model.network import SequenceNet, architecture
from seqops.model.runtime import load_network
from seqops.model.system import LitSequenceModel
from seqops.model.training import load_system
from seqops.onnx_export import check_parity, parity_batches, quantize_int8
from seqops.tasks.parts.serve import get_serve
from seqops.tasks.parts.train import get_train
from tests.unit.bundles import classification_meta, export, predictor

F, C = 3, 4  # features, classes of the tiny nets
META = classification_meta(["a", "b", "c"], ["w", "x", "y", "z"])
P = 0.5  # recurrent dropout of the tiny nets


def regularised_net(cell: str, bidirectional: bool = True, pooling: str = "mean") -> SequenceNet:
    torch.manual_seed(0)
    return SequenceNet(
        F, C, cell=cell, hidden_size=6, num_layers=2, bidirectional=bidirectional,
        pooling=pooling, recurrent_dropout=P, locked_dropout=True,
    )  # fmt: skip


def hh(net: SequenceNet) -> torch.Tensor:
    """The first forward cell's hidden-to-hidden weight parameter."""
    return net.forward_cells[0].get_parameter("weight_hh_l0")


def batch(seed: int = 1, size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 9, F, generator=g)
    lengths = torch.randint(2, 10, (size,), generator=g)
    return x, lengths, torch.randint(0, C, (size,), generator=g)


def train_steps(net: SequenceNet, steps: int = 5) -> SequenceNet:
    """A few optimiser steps in training mode, so eval runs on trained (not initial) weights."""
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(steps):
        x, lengths, y = batch(seed=step)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x, lengths), y).backward()
        opt.step()
    return net.eval()


def hh_weights_seen(net: SequenceNet, calls: int) -> list[torch.Tensor]:
    """The hidden-to-hidden matrix the first cell ran with, at each of `calls` forward calls."""
    seen: list[torch.Tensor] = []
    cell = net.forward_cells[0]
    hook = cell.register_forward_pre_hook(
        lambda module, args: seen.append(module.weight_hh_l0.detach().clone())
    )
    x, lengths, _ = batch()
    try:
        for _ in range(calls):
            net(x, lengths)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_training_drops_recurrent_weights_with_a_fresh_mask_per_batch(cell: str) -> None:
    net = regularised_net(cell).train()
    raw = hh(net).detach().clone()
    first, second = hh_weights_seen(net, calls=2)
    for used in (first, second):
        # DropConnect: each weight is dropped or kept and rescaled by 1 / (1 - p)
        kept = used != 0
        torch.testing.assert_close(used[kept], raw[kept] / (1 - P))
        assert 0.3 < (~kept).float().mean().item() < 0.7
    assert not torch.equal(first != 0, second != 0), "each batch draws its own mask"
    # the parameter itself is never overwritten, and it gets the gradient
    assert torch.equal(hh(net), raw)
    x, lengths, y = batch()
    torch.nn.functional.cross_entropy(net(x, lengths), y).backward()
    grad = hh(net).grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_eval_is_deterministic_and_is_the_plain_cell(cell: str) -> None:
    net = train_steps(regularised_net(cell))
    (used,) = hh_weights_seen(net, calls=1)
    assert torch.equal(used, hh(net)), "no mask in eval"
    plain = SequenceNet(
        F, C, cell=cell, hidden_size=6, num_layers=2, bidirectional=True, pooling="mean"
    ).eval()
    plain.load_state_dict(net.state_dict())  # same keys: strict load
    x, lengths, _ = batch(seed=99)
    with torch.no_grad():
        once, twice = net(x, lengths), net(x, lengths)
        assert torch.equal(once, twice)
        assert torch.equal(once, plain(x, lengths))
        # a training forward in between leaves no dropped weights behind
        net.train()(x, lengths)
        assert torch.equal(net.eval()(x, lengths), once)


def test_locked_dropout_shares_one_mask_across_a_sequences_steps() -> None:
    torch.manual_seed(0)
    h = torch.ones(16, 10, 8)  # (B, T, D)
    locked = SequenceNet(F, C, dropout=P, locked_dropout=True).train()
    out = locked.step_dropout(h)
    assert set(out.unique().tolist()) == {0.0, 1 / (1 - P)}
    assert torch.equal(out, out[:, :1].expand_as(out)), "constant over time per (b, d)"
    assert not torch.equal(out[0], out[1]), "each sequence draws its own mask"
    standard = SequenceNet(F, C, dropout=P).train().step_dropout(h)
    assert not torch.equal(standard, standard[:, :1].expand_as(standard))
    assert torch.equal(locked.eval().step_dropout(h), h)


@pytest.mark.parametrize(
    ("cell", "bidirectional", "pooling"),
    list(itertools.product(("lstm", "gru", "rnn"), (False, True), ("last", "attention"))),
)
def test_padding_never_changes_a_sequences_output(
    cell: str, bidirectional: bool, pooling: str
) -> None:
    net = train_steps(regularised_net(cell, bidirectional, pooling))
    seqs = [torch.randn(n, F) for n in (7, 3, 5)]
    time = 3 * max(len(s) for s in seqs)
    x = torch.full((len(seqs), time, F), 37.0)  # large non-zero garbage in the padding
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    with torch.no_grad():
        batched = net(x, torch.tensor([len(s) for s in seqs]))
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))
            torch.testing.assert_close(batched[i], alone[0], atol=1e-6, rtol=0)


def test_off_by_default_is_todays_model() -> None:
    assert ModelConfig().recurrent_dropout == 0.0 and ModelConfig().locked_dropout is False
    torch.manual_seed(0)
    today = SequenceNet(F, C, hidden_size=6).train()
    torch.manual_seed(0)
    explicit = SequenceNet(F, C, hidden_size=6, recurrent_dropout=0.0, locked_dropout=False)
    assert list(explicit.state_dict()) == list(today.state_dict())
    x, lengths, _ = batch()
    torch.manual_seed(1)
    expected = today(x, lengths)
    torch.manual_seed(1)
    assert torch.equal(explicit.train()(x, lengths), expected)  # same dropout draws too


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_export_is_the_plain_op_with_parity(tmp_path: Path, cell: str) -> None:
    net = train_steps(regularised_net(cell))
    path = tmp_path / "m.onnx"
    export(net, path, META)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert cell.upper() in ops
    assert not ops & {"Dropout", "RandomUniform", "RandomUniformLike", "Bernoulli"}, ops
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((int(t), F)).astype(np.float32) for t in rng.integers(2, 12, 20)]
    test = SequenceSet(seqs, rng.integers(0, C, size=20))
    parity = check_parity(
        net, predictor(path, META), parity_batches(test, [1, 7], 36), 1e-5, get_serve(META.task)
    )
    assert parity.passed and parity.max_abs_diff <= 1e-5
    if cell == "lstm":  # int8 needs the weights as constant initializers
        assert quantize_int8(cell, path, tmp_path / "m.int8.onnx") is None
        assert contract.has_quantized_lstm(onnx.load(str(tmp_path / "m.int8.onnx")))


def _loader(seed: int) -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(*batch(seed=seed, size=16)), batch_size=8)


#: A checkpoint written before recurrent dropout existed has only these network keys.
BEFORE = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout", "pooling")


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        (ModelConfig(recurrent_dropout=0.3, locked_dropout=True), None),
        (ModelConfig(), BEFORE),
    ],
)
def test_lightning_trains_and_reloads_the_checkpoint(
    tmp_path: Path, model: ModelConfig, keys: tuple[str, ...] | None
) -> None:
    torch.manual_seed(0)
    network = architecture(model.model_copy(update={"hidden_size": 6}))
    network = {k: v for k, v in network.items() if keys is None or k in keys}
    system = LitSequenceModel(
        n_features=F, n_outputs=C, network=network,
        objective=get_train(META.task).objective(META, TrainConfig(), model),
        lr=1e-2, weight_decay=0.0, scheduler="none", max_epochs=2,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(system, _loader(0), _loader(1))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = load_system(tmp_path / "m.ckpt")
    assert loaded.net.recurrent_dropout == model.recurrent_dropout
    assert loaded.net.locked_dropout == model.locked_dropout
    x, lengths, _ = batch(seed=5)
    # What evaluate, export and benchmark load (no Lightning): the same network, same outputs.
    net, hparams = load_network(tmp_path / "m.ckpt")
    assert not net.training and hparams["network"] == network
    with torch.no_grad():
        assert torch.equal(loaded(x, lengths), system.eval()(x, lengths))
        assert torch.equal(net(x, lengths), system(x, lengths))
