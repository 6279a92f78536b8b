"""`cell: transformer`: padding invariance, the causal rule, the ONNX graph (symbolic axes,
parity with ONNX Runtime, int8), no streaming, config checks, the conditional search space
and a few training steps through `fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import optuna
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import Config, load_config, parse_config
from seqops.errors import ConfigError
from seqops.model.network import SequenceNet
from seqops.model.runtime import load_network
from seqops.model.streaming import NotStreamable, StepNet, streaming_reason
from seqops.onnx_export import export_onnx, quantize_int8
from seqops.tuning.study import dotted_params, suggest
from seqops.tuning.trial import trial_config

F, C = 3, 4  # features, outputs of the tiny networks
PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def transformer(*, bidirectional: bool = True, per_step: bool = False, **kw: Any) -> SequenceNet:
    torch.manual_seed(0)
    args: dict[str, Any] = {"hidden_size": 8, "heads": 2, "num_layers": 2, **kw}
    return SequenceNet(
        F, C, cell="transformer", bidirectional=bidirectional, per_step=per_step, **args
    ).eval()


def padded(x: torch.Tensor, time: int, fill: float = 9.0) -> torch.Tensor:
    """`x` (1, T, F) inside a batch of 3 padded to `time` steps with garbage `fill`."""
    batch = torch.full((3, time, x.shape[-1]), fill)
    batch[0] = torch.randn(time, x.shape[-1])
    batch[1, : x.shape[1]] = x[0]
    return batch


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_never_changes_a_pooled_output(pooling: str, bidirectional: bool) -> None:
    net = transformer(bidirectional=bidirectional, pooling=pooling)
    x = torch.randn(1, 5, F)
    with torch.no_grad():
        alone = net(x, torch.tensor([5]))
        inside = net(padded(x, 15), torch.tensor([15, 5, 7]))[1:2]
    torch.testing.assert_close(inside, alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_never_changes_a_per_step_output(bidirectional: bool) -> None:
    net = transformer(bidirectional=bidirectional, per_step=True)
    x = torch.randn(1, 6, F)
    with torch.no_grad():
        alone = net(x, torch.tensor([6]))
        inside = net(padded(x, 18), torch.tensor([18, 6, 2]))
    torch.testing.assert_close(inside[1:2, :6], alone, atol=1e-6, rtol=0)
    assert torch.all(inside[1, 6:] == 0)  # padded steps' outputs are 0


def test_token_input_is_projected_to_the_width_and_ignores_padding() -> None:
    torch.manual_seed(0)
    net = SequenceNet(0, 2, cell="transformer", hidden_size=8, heads=4, vocab_size=30,
                      embedding_dim=5).eval()  # fmt: skip
    tokens = torch.randint(2, 30, (1, 7))
    batch = torch.zeros(2, 20, dtype=torch.int64)
    batch[0, :7], batch[1] = tokens[0], torch.randint(2, 30, (20,))
    with torch.no_grad():
        torch.testing.assert_close(
            net(batch, torch.tensor([7, 20]))[:1], net(tokens, torch.tensor([7])), atol=1e-6, rtol=0
        )


def test_causal_attention_never_reads_a_later_step() -> None:
    """bidirectional: false → causal: changing step 6 leaves steps 0..5 exactly as they were;
    with full attention (bidirectional: true) every step sees the change."""
    x = torch.randn(1, 10, F)
    later = x.clone()
    later[0, 6:] += 5.0
    lengths = torch.tensor([10])
    causal = transformer(bidirectional=False, per_step=True)
    with torch.no_grad():
        before, after = causal(x, lengths), causal(later, lengths)
    assert torch.equal(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])
    full = transformer(bidirectional=True, per_step=True)
    with torch.no_grad():
        assert not torch.allclose(full(x, lengths)[:, :6], full(later, lengths)[:, :6])


def test_positions_have_no_length_limit() -> None:
    net = transformer(per_step=True)
    with torch.no_grad():
        out = net(torch.randn(2, 3000, F), torch.tensor([3000, 17]))
    assert out.shape == (2, 3000, C) and torch.isfinite(out).all()


@pytest.mark.parametrize("per_step", [False, True])
def test_onnx_graph_has_symbolic_axes_and_matches_torch_on_mixed_lengths(
    per_step: bool, tmp_path: Path
) -> None:
    net = transformer(bidirectional=not per_step, per_step=per_step, pooling="attention")
    output = contract.per_step_shape(C) if per_step else [contract.BATCH, C]
    expected = contract.expected_shapes(contract.INPUT, F, contract.OUTPUT, output, {})
    path = tmp_path / "m.onnx"
    export_onnx(net, path, Config().export.opset, contract.INPUT, contract.OUTPUT, expected)
    shapes = contract.graph_shapes(onnx.load(str(path)))
    assert shapes[contract.INPUT][:2] == [contract.BATCH, contract.TIME]
    assert shapes[contract.OUTPUT][: 2 if per_step else 1] == output[: 2 if per_step else 1]

    rng = np.random.default_rng(0)
    lengths = np.array([13, 1, 7, 4], dtype=np.int64)  # export traced 3 x 5
    x = rng.standard_normal((4, 13, F)).astype(np.float32)
    x[np.arange(13)[None, :] >= lengths[:, None]] = 9.0  # garbage padding
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {contract.INPUT: x, contract.LENGTHS: lengths})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    export = Config().export
    np.testing.assert_allclose(got, want, atol=export.parity_atol, rtol=export.parity_rtol)

    int8 = tmp_path / "m.int8.onnx"
    assert quantize_int8("transformer", path, int8) is None
    assert contract.has_op(onnx.load(str(int8)), contract.QUANTIZED_OPS["transformer"])


def test_a_transformer_does_not_stream_and_says_why() -> None:
    net = transformer(bidirectional=False, per_step=True)
    reason = streaming_reason(net)
    assert reason is not None and reason.startswith("transformer:")
    with pytest.raises(NotStreamable, match="transformer"):
        StepNet(net)
    # a language model's windows: no state to carry, each window read alone
    out, state = net.forward_with_state(torch.randn(2, 5, F), torch.tensor([5, 5]))
    assert state == () and out.shape == (2, 5, C)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"cell": "transformer", "hidden_size": 30, "heads": 4},
            "model.hidden_size = 30 must be divisible by model.heads = 4",
        ),
        (
            {"cell": "transformer", "recurrent_dropout": 0.2},
            "model.recurrent_dropout = 0.2 acts on recurrent cells",
        ),
        (
            {"cell": "transformer", "locked_dropout": True},
            "model.locked_dropout = True acts on recurrent cells",
        ),
    ],
)
def test_config_refuses_what_a_transformer_cannot_be(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"model": model})


def test_heads_only_matter_for_a_transformer() -> None:
    assert parse_config({"model": {"hidden_size": 30, "heads": 4}}).model.heads == 4


def _space_with_transformer(**branch: dict[str, Any]) -> dict[str, Any]:
    space = Config().tune.model_dump(mode="json")["space"]
    space["model.cell"] = {
        "type": "categorical",
        "choices": ["lstm", "gru", "transformer"],
        "when": {"transformer": branch},
    }
    return {"tune": {"space": space}}


BRANCH = {
    "model.hidden_size": {"type": "categorical", "choices": [16, 32]},
    "model.heads": {"type": "categorical", "choices": [2, 4]},
    "model.num_layers": {"type": "int", "low": 1, "high": 3},
}


def test_transformer_dimensions_are_sampled_only_when_it_is_drawn() -> None:
    cfg = parse_config(_space_with_transformer(**BRANCH))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = set()
    for _ in range(30):
        trial = study.ask()
        params = suggest(trial, cfg.tune.space)
        cell = params["model.cell"]
        drawn.add(cell)
        branch = {n for n in trial.params if n.startswith("model.cell=transformer/")}
        if cell == "transformer":
            assert branch == {f"model.cell=transformer/{p}" for p in BRANCH}
            assert params["model.hidden_size"] in (16, 32) and params["model.heads"] in (2, 4)
            assert "model.hidden_size" not in trial.params  # the top-level range is not drawn
        else:
            assert not branch and "model.heads" not in params
        assert dotted_params(trial.params) == params
        tcfg = trial_config(cfg, params)
        assert tcfg.model.cell == cell and tcfg.model.hidden_size == params["model.hidden_size"]
        study.tell(trial, 0.0)
    assert drawn == {"lstm", "gru", "transformer"}


def test_a_fixed_transformer_trial_gives_its_branch_values() -> None:
    cfg = parse_config(_space_with_transformer(**BRANCH))
    fixed = {  # FixedTrial takes the Optuna names
        "model.cell": "transformer",
        "model.cell=transformer/model.hidden_size": 32,
        "model.cell=transformer/model.heads": 4,
        "model.cell=transformer/model.num_layers": 3,
        "model.bidirectional": False,
        "model.dropout": 0.1,
        "model.pooling": "mean",
        "train.lr": 3e-3,
        "train.batch_size": 16,
    }
    params = suggest(optuna.trial.FixedTrial(fixed), cfg.tune.space)
    model = trial_config(cfg, params).model
    assert (model.cell, model.hidden_size, model.heads, model.num_layers) == (
        "transformer",
        32,
        4,
        3,
    )


def test_the_default_space_samples_as_it_did() -> None:
    """No `when` in the default space: the same Optuna names, in the same order, as before."""
    cfg = Config()
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggest(trial, cfg.tune.space)
    assert list(trial.params) == list(cfg.tune.space)
    assert cfg.tune.space["model.cell"].choices == ["lstm", "gru"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("branch", "message"),
    [
        (
            {
                "model.hidden_size": {"type": "categorical", "choices": [32, 48]},
                "model.heads": {"type": "categorical", "choices": [5]},
            },
            "when.transformer: model.hidden_size = 32, model.heads = 5 is refused",
        ),
        ({"model.cell": {"type": "categorical", "choices": ["gru"]}}, "cannot search model.cell"),
        ({"model.headz": {"type": "int", "low": 1, "high": 2}}, "model.headz: no such param"),
    ],
)
def test_a_bad_branch_is_refused_naming_it(branch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_space_with_transformer(**branch))


def test_a_branch_must_name_a_choice() -> None:
    raw = _space_with_transformer(**BRANCH)
    raw["tune"]["space"]["model.cell"]["choices"] = ["lstm", "gru"]
    with pytest.raises(ConfigError, match="'transformer' is not one of"):
        parse_config(raw)


def test_a_few_training_steps_then_the_checkpoint_exports(processed: Path, tmp_path: Path) -> None:
    from seqops.model.training import fit

    overrides = {
        "model.cell": "transformer",
        "model.hidden_size": 8,
        "model.heads": 2,
        "model.num_layers": 1,
        "train.max_epochs": 2,
        "train.patience": 2,
        "train.batch_size": 8,
        "train.epoch_examples": 0,
        "train.refit_max_examples": 0,
    }
    result = fit(load_config(PARAMS, overrides=overrides), processed, tmp_path / "ckpt",
                 progress_bar=False)  # fmt: skip
    assert result.steps == 3 * 2 and all(np.isfinite(r["train/loss"]) for r in result.history)
    net, hparams = load_network(result.best_checkpoint)
    assert hparams["network"]["cell"] == "transformer" and net.transformer is not None
    expected = contract.expected_shapes(contract.INPUT, 2, contract.OUTPUT, [contract.BATCH, 2], {})
    path = tmp_path / "m.onnx"
    export_onnx(net, path, Config().export.opset, contract.INPUT, contract.OUTPUT, expected)
    x = np.random.default_rng(1).standard_normal((2, 6, 2)).astype(np.float32)
    lengths = np.array([6, 3], dtype=np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {contract.INPUT: x, contract.LENGTHS: lengths})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
