"""`tune.choose`: values fixed before the search by k-fold cross-validation."""

from pathlib import Path

import numpy as np
import pytest

from seqops.config import Config, parse_config
from seqops.contracts import choice_lines
from seqops.data.sequences import SequenceSet
from seqops.errors import ConfigError
from seqops.layout import PROCESSED_META, split_file
from seqops.tuning.choice import choose, fold_scores, preferred
from tests.unit.bundles import classification_meta


def _row(accuracy: float, loss: float) -> dict[str, float]:
    return {"accuracy": accuracy, "loss": loss}


def test_higher_accuracy_wins_then_lower_loss_then_the_first_listed() -> None:
    assert preferred([_row(0.9, 0.1), _row(0.95, 0.5)]) == 1
    assert preferred([_row(0.9, 0.3), _row(0.9, 0.2), _row(0.8, 0.0)]) == 1
    assert preferred([_row(0.9, 0.2), _row(0.9, 0.2)]) == 0
    # The same right answers summed in another order are a tie on accuracy.
    assert preferred([_row(0.1 + 0.2, 0.4), _row(0.3, 0.39)]) == 1
    assert preferred([_row(0.9, float("nan")), _row(0.9, 5.0)]) == 1


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        (
            {
                "choose": {"model.hidden_size": [8, 16]},
                "space": {"model.hidden_size": {"type": "int", "low": 8, "high": 16}},
            },
            r"tune\.choose\.model\.hidden_size: also searched in tune\.space",
        ),
        ({"choose": {"model.kernel_features": [0]}}, r"list at least two distinct values"),
        ({"choose": {"model.kernel_features": [0, 0]}}, r"list at least two distinct values"),
        ({"choose": {"model.kernel_featurs": [0, 84]}}, r"kernel_featurs: no such param"),
        ({"choose": {"model.kernel_features": [0, 50]}}, r"50 is not a valid model\.kernel_f"),
        ({"choose": {"data.val_fraction": [0.1, 0.2]}}, r"not a searchable path"),
    ],
)
def test_a_bad_choice_is_refused_at_load_naming_its_path(
    tune: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"tune": tune})


def test_a_choice_is_refused_where_the_task_cannot_use_it() -> None:
    text = {"data": {"task": "text_classification", "dataset": None, "path": "x.tsv"}}
    with pytest.raises(ConfigError, match=r"kernel_features: not read by data\.task = 'text_cl"):
        parse_config({**text, "tune": {"choose": {"model.kernel_features": [0, 84]}}})
    forecast = {
        "data": {"task": "forecasting", "dataset": "co2"},
        "train": {"monitor": "val/loss"},
        "release": {"metric": "test/rmse", "max_metric": 1.0},
    }
    with pytest.raises(ConfigError, match=r"stratified folds, which data\.task = 'forecasting'"):
        parse_config({**forecast, "tune": {"choose": {"train.weight_decay": [0, 0.001]}}})
    # Without a search the choice is not made, and not refused.
    off = parse_config(
        {**forecast, "tune": {"enabled": False, "choose": {"train.weight_decay": [0, 0.001]}}}
    )
    assert off.tune.choose == {"train.weight_decay": [0, 0.001]}


def test_left_out_or_null_the_task_decides_and_an_empty_mapping_turns_it_off() -> None:
    kernels = {"model.kernel_features": [0, 10000], "model.recurrent": [True, False]}
    assert parse_config({}).tune.choose == kernels  # sequence_classification
    assert parse_config({"tune": {"choose": None}}).tune.choose == kernels
    assert parse_config({"tune": {"choose": {}}}).tune.choose == {}
    forecast = {
        "data": {"task": "forecasting", "dataset": "co2"},
        "train": {"monitor": "val/loss"},
        "tune": {"metric": "val/loss"},
        "release": {"metric": "test/rmse", "max_metric": 1.0},
    }
    assert parse_config(forecast).tune.choose == {}


def _processed(tmp_path: Path) -> Path:
    """Two classes told apart by their mean, 48 sequences for train + val."""
    processed = tmp_path / "processed"
    processed.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 36), ("val", 12), ("test", 8)):
        labels = np.arange(n) % 2
        seqs = [(rng.standard_normal((10, 2)) + 1.5 * y).astype(np.float32) for y in labels]
        SequenceSet(seqs, labels).save(processed / split_file(name))
    classification_meta(["a", "b"], ["no", "yes"]).write(processed / PROCESSED_META)
    return processed


def test_each_value_trains_on_every_fold_and_the_rule_picks_one(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "model": {"hidden_size": 4, "num_layers": 1, "bidirectional": False},
            "train": {"max_epochs": 2, "epoch_examples": 0, "batch_size": 16},
            "tune": {"choose": {"model.hidden_size": [4, 6]}, "choose_folds": 2, "space": {
                "train.lr": {"type": "float", "low": 0.001, "high": 0.01}}},
        }
    )  # fmt: skip
    counted: list[int] = []
    chosen, report = choose(cfg, _processed(tmp_path), tmp_path / "work", progress=counted.append)
    row = report["model.hidden_size"]
    assert counted == [4] and row["folds"] == 2
    assert [c["value"] for c in row["candidates"]] == [4, 6]
    for c in row["candidates"]:
        assert len(c["fold_accuracy"]) == len(c["fold_loss"]) == 2
        assert c["accuracy"] == pytest.approx(np.mean(c["fold_accuracy"]))
        assert c["loss"] == pytest.approx(np.mean(c["fold_loss"]))
        assert all(0.0 <= a <= 1.0 for a in c["fold_accuracy"])
    assert row["candidates"][0]["fold_loss"] != row["candidates"][1]["fold_loss"]
    assert chosen == {"model.hidden_size": row["candidates"][preferred(row["candidates"])]["value"]}
    assert row["chosen"] == chosen["model.hidden_size"]
    # Deterministic: the same folds and seeds give the same figures.
    _, again = choose(cfg, tmp_path / "processed", tmp_path / "again")
    assert again == report
    (line,) = choice_lines(report)
    assert line.startswith(f"`model.hidden_size` = {chosen['model.hidden_size']}, chosen by 2-fold")


def test_a_value_the_earlier_choice_rules_out_is_refused_not_trained(tmp_path: Path) -> None:
    # The separable classes: the kernel path alone fits them; then whether the recurrent path
    # stays beside it is cross-validated too. After kernel_features 0, recurrent false would
    # leave no path: recorded as refused, nothing trained, recurrent kept.
    small = {"model": {"hidden_size": 4, "num_layers": 1, "bidirectional": False},
             "train": {"max_epochs": 2, "epoch_examples": 0, "batch_size": 16}}  # fmt: skip
    processed = _processed(tmp_path)
    for first, trained in (([0], 0), ([84], 2)):
        cfg = parse_config(
            {**small, "model": {**small["model"], "kernel_features": first[0]},
             "tune": {"choose": {"model.recurrent": [True, False]}, "choose_folds": 2}}
        )  # fmt: skip
        counted: list[int] = []
        work = tmp_path / f"work-{first[0]}"
        chosen, report = choose(cfg, processed, work, progress=counted.append)
        row = report["model.recurrent"]
        assert counted == [4]  # the bar moves by every listed value's folds either way
        assert len(row["candidates"]) == trained
        if not trained:
            assert chosen == {"model.recurrent": True} and row["chosen"] is True
            (refusal,) = row["refused"]
            assert refusal["value"] is False and "leaves no path" in refusal["reason"]
            assert "refused" in choice_lines(report)[0]
        else:
            assert "refused" not in row
            assert row["chosen"] == row["candidates"][preferred(row["candidates"])]["value"]
    with pytest.raises(ConfigError, match=r"model\.recurrent = false leaves no path"):
        parse_config({"model": {"recurrent": False}})


def test_a_config_already_cross_validated_is_not_trained_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel path kept on the first path (84 or 168 features) is, with
    # `recurrent: true`, the config the second path's first value trains: its folds are
    # read from the first path's, not trained again.
    cfg = parse_config(
        {"model": {"hidden_size": 4, "num_layers": 1, "bidirectional": False},
         "train": {"max_epochs": 2, "epoch_examples": 0, "batch_size": 16},
         "tune": {"choose": {"model.kernel_features": [84, 168],
                             "model.recurrent": [True, False]}, "choose_folds": 2}}
    )  # fmt: skip
    trained: list[Config] = []

    def counting(config: Config, directory: Path, checkpoints: Path) -> tuple[float, float]:
        trained.append(config)
        return fold_scores(config, directory, checkpoints)

    monkeypatch.setattr("seqops.tuning.choice.fold_scores", counting)
    chosen, report = choose(cfg, _processed(tmp_path), tmp_path / "work")
    assert len(trained) == 2 * 2 + 1 * 2  # not 2 * 2 + 2 * 2
    kept = next(c for c in report["model.kernel_features"]["candidates"]
                if c["value"] == chosen["model.kernel_features"])  # fmt: skip
    again = report["model.recurrent"]["candidates"][0]
    assert again["value"] is True
    assert (again["fold_accuracy"], again["fold_loss"]) == (
        kept["fold_accuracy"],
        kept["fold_loss"],
    )
