"""Search-space validation, study naming and trial sampling (real Optuna, in-memory storage)."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from seqops.config import Config, parse_config
from seqops.errors import ConfigError
from seqops.tuning.study import single_device_note, study_name, suggest, trial_base
from seqops.tuning.trial import best_value, trial_config


def _space(**dims: dict[str, Any]) -> dict[str, Any]:
    return {"tune": {"space": {k.replace("__", "."): v for k, v in dims.items()}}}


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (
            {"model.hiden_size": {"type": "int", "low": 8, "high": 16}},
            "tune.space.model.hiden_size: no such param",
        ),
        (
            {"model.hidden_size": {"type": "int", "low": 32, "high": 5000}},
            "tune.space.model.hidden_size: 5000 is not a valid model.hidden_size "
            "(Input should be less than or equal to 4096)",
        ),
        (
            {"model.hidden_size": {"type": "int", "low": 64, "high": 32}},
            "low=64 must be below high=32",
        ),
        (
            {"train.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
            "log=true needs low > 0",
        ),
        (
            {"model.cell": {"type": "categorical", "choices": ["lstm", "mamba"]}},
            "tune.space.model.cell: 'mamba' is not a valid model.cell",
        ),
        (
            {"model.dropout": {"type": "float", "low": 0.1, "high": 1.5}},
            "tune.space.model.dropout: 1.5 is not a valid model.dropout",
        ),
        (
            {"model.hidden_size": {"type": "float", "low": 8, "high": 16}},
            "tune.space.model.hidden_size: a float range does not fit model.hidden_size (int)",
        ),
        (
            {"model.bidirectional": {"type": "int", "low": 0, "high": 1}},
            "tune.space.model.bidirectional: a int range does not fit",
        ),
        (
            {"data.val_fraction": {"type": "float", "low": 0.1, "high": 0.3}},
            "tune.space.data.val_fraction: not a searchable path",
        ),
        (
            {"model.cell": {"type": "categorical", "choices": []}},
            "tune.space.model.cell.categorical.choices",
        ),
        (
            {"model.cell": {"type": "grid", "choices": ["lstm"]}},
            "does not match any of the expected tags",
        ),
    ],
)
def test_invalid_space_is_rejected_at_load_with_its_key_path(
    space: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"tune": {"space": space}})
    assert expected in str(err.value)


def test_direction_that_contradicts_the_metric_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"contradicts tune\.metric='val/accuracy'"):
        parse_config({"tune": {"metric": "val/accuracy", "direction": "minimize"}})
    assert parse_config({"tune": {"metric": "val/accuracy"}}).tune.goal == "maximize"
    assert Config().tune.goal == "minimize"


def test_disabled_tuning_may_have_an_empty_space_enabled_may_not() -> None:
    assert parse_config({"tune": {"enabled": False, "space": {}}}).tune.space == {}
    with pytest.raises(ConfigError, match=r"tune\.space is empty"):
        parse_config({"tune": {"space": {}}})


def test_study_name_changes_with_space_data_seed_but_not_budget() -> None:
    cfg = Config()
    name = study_name(cfg, "abc")
    assert name == study_name(Config(), "abc")
    assert name.startswith("seqops-")
    assert study_name(cfg, "abd") != name
    assert study_name(parse_config({"seed": 7}), "abc") != name
    narrower = {"model.hidden_size": {"type": "int", "low": 32, "high": 64}}
    assert study_name(parse_config(_space(**narrower)), "abc") != name
    # A bigger budget or another pruner continues the same search.
    more = parse_config({"tune": {"n_trials": 40, "pruner": "hyperband", "timeout_s": 60}})
    assert study_name(more, "abc") == name
    # Epochs beyond the trial cap never reach a trial, so they do not split the study.
    assert study_name(parse_config({"train": {"max_epochs": 80}}), "abc") == name
    # Cross-validated trials score another objective: a study of its own.
    assert study_name(parse_config({"tune": {"folds": 3}}), "abc") != name


def test_trial_base_caps_epochs_only_downwards() -> None:
    assert trial_base(Config()).train.max_epochs == 10
    short = parse_config({"train": {"max_epochs": 5}})
    assert trial_base(short).train.max_epochs == 5
    assert trial_base(parse_config({"tune": {"max_epochs": None}})).train.max_epochs == 60


def test_trials_run_on_one_device_with_one_thread_and_say_so() -> None:
    ddp = parse_config({"train": {"devices": 2, "strategy": "ddp", "threads": 4}})
    train = trial_base(ddp).train
    assert (train.devices, train.strategy, train.threads) == (1, "auto", 1)
    assert study_name(ddp, "abc") == study_name(Config(), "abc")  # same trials, same study
    assert trial_base(parse_config({"train": {"threads": 0}})).train.threads == 0
    assert single_device_note(Config()) is None
    assert single_device_note(ddp) == (
        "tune: train.devices=2 / train.strategy='ddp' apply to the train stage only; each "
        "trial runs in one process on one device"
    )


def test_sampled_params_stay_in_range_and_replace_the_dotted_paths() -> None:
    cfg = Config()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = suggest(trial, cfg.tune.space)
        assert set(params) == set(cfg.tune.space)
        assert 32 <= params["model.hidden_size"] <= 128
        assert 1e-3 <= params["train.lr"] <= 1e-2
        assert params["model.cell"] in ("lstm", "gru")
        tcfg = trial_config(cfg, params)
        assert tcfg.model.hidden_size == params["model.hidden_size"]
        assert tcfg.model.bidirectional is params["model.bidirectional"]
        assert tcfg.train.lr == params["train.lr"]
        assert tcfg.train.batch_size == params["train.batch_size"]
        assert tcfg.train.max_epochs == cfg.tune.max_epochs
        assert tcfg.train.weight_decay == cfg.train.weight_decay
        study.tell(trial, 0.0)


def test_best_value_follows_direction_and_ignores_missing_epochs() -> None:
    history = [{"val/loss": 0.9}, {"train/loss": 1.0}, {"val/loss": 0.4}, {"val/loss": 0.6}]
    assert best_value(history, "val/loss", "minimize") == 0.4
    assert best_value(history, "val/loss", "maximize") == 0.9
    with pytest.raises(RuntimeError, match="never logged"):
        best_value(history, "val/accuracy", "maximize")


def _finished(value_at_step_4: float) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=value_at_step_4,
        intermediate_values={step: value_at_step_4 for step in range(5)},
        state=optuna.trial.TrialState.COMPLETE,
    )


def test_the_round_pruner_compares_only_with_earlier_rounds() -> None:
    from seqops.tuning.rounds import RoundPruner

    median = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(direction="minimize", pruner=median)
    study.add_trial(_finished(1.0))  # trial 0: the earlier round
    study.add_trial(_finished(0.1))  # trial 1: trial 2's round-mate, which happened to finish
    trial = study.ask()  # trial 2
    trial.report(0.8, step=4)
    frozen = study._storage.get_trial(trial._trial_id)
    # Seeing the round-mate, the median of 1.0 and 0.1 (0.55) prunes a 0.8; whether it is
    # seen depends on timing, so the round's pruner sees only trial 0 (1.0) and continues.
    assert bool(median.prune(study, frozen)) is True
    assert bool(RoundPruner(median, first=1).prune(study, frozen)) is False
    worse = study.ask()  # trial 3, in the same round
    worse.report(1.5, step=4)
    frozen = study._storage.get_trial(worse._trial_id)
    assert bool(RoundPruner(median, first=1).prune(study, frozen)) is True  # worse than trial 0
    assert bool(RoundPruner(median, first=0).prune(study, frozen)) is False  # nothing to compare
