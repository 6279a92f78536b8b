from pathlib import Path

import pytest
import yaml

from seqops.config import Config, load_config, metric_direction, parse_config
from seqops.errors import ConfigError
from tests.conftest import preset_params

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_are_valid_and_match_the_field_defaults() -> None:
    cfg = load_config(REPO / "params.yaml")
    assert cfg.data.dataset == "JapaneseVowels"
    # params.yaml restates every default; a drift between the two would be a second default.
    assert cfg == Config()


def test_typo_names_the_key_path_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"hiden_size": 32}})
    assert "model.hiden_size = 32: unknown key" in str(err.value)


def test_wrong_type_names_key_value_and_expectation() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"train": {"lr": "fast"}})
    msg = str(err.value)
    assert "train.lr = 'fast'" in msg and "valid number" in msg


def test_out_of_range_and_bad_choice() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"hidden_size": 0, "cell": "mamba"}})
    msg = str(err.value)
    assert "model.hidden_size = 0" in msg and "greater than or equal to 1" in msg
    assert "model.cell = 'mamba'" in msg and "'lstm', 'gru', 'rnn' or 'transformer'" in msg


def test_exactly_one_data_source() -> None:
    with pytest.raises(ConfigError, match=r"exactly one of data\.dataset"):
        parse_config({"data": {"dataset": "JapaneseVowels", "path": "x.csv"}})
    with pytest.raises(ConfigError, match=r"exactly one of data\.dataset"):
        parse_config({"data": {"dataset": None}})


def test_overrides_replace_dotted_paths_and_reject_unknown_sections(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"lr": 0.1}}))
    assert load_config(params, {"train.lr": 0.01}).train.lr == 0.01
    with pytest.raises(ConfigError, match=r"modle = \{'hidden_size': 8\}: unknown key"):
        load_config(params, {"modle.hidden_size": 8})
    with pytest.raises(ConfigError, match="'lr' is a value, not a section"):
        load_config(params, {"train.lr.max": 8})
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(params, {"model.hiden_size": 8})


def test_missing_and_malformed_params_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_metric_direction_and_monitor_mode() -> None:
    assert metric_direction("val/loss") == "minimize"
    assert metric_direction("val/f1_macro") == "maximize"
    assert parse_config({"train": {"monitor": "val/accuracy"}}).train.monitor_mode == "max"


def test_flat_params_use_dotted_names() -> None:
    flat = Config().to_flat_dict()
    assert flat["model.hidden_size"] == 64 and flat["train.lr"] == 0.003 and flat["seed"] == 42


def test_presets_are_valid() -> None:
    for preset in sorted((REPO / "params").glob("*.yaml")):
        parse_config(preset_params(preset.stem))
    co2 = parse_config(preset_params("co2"))
    assert co2.data.task == "forecasting" and co2.release.metric == "test/rmse"


FORECAST = {"data": {"task": "forecasting", "dataset": "co2"}}
RMSE = {"metric": "test/rmse", "max_metric": 0.5}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "release.metric = 'test/accuracy' does not fit data.task = 'forecasting'"),
        (
            {
                "release": {"metric": "test/rmse", "max_metric": 0.5},
                "tune": {"metric": "val/accuracy"},
            },
            "tune.metric = 'val/accuracy' does not fit data.task = 'forecasting'",
        ),
        ({"release": {"metric": "test/rmse"}}, "set release.max_metric, its ceiling"),
        (
            {"data": {"dataset": "JapaneseVowels"}},
            "data.dataset = 'JapaneseVowels': not a bundled series for forecasting",
        ),
        (
            {
                "release": {"metric": "test/rmse", "max_metric": 0.5},
                "data": {"forecast": {"horizon": 0}},
            },
            "data.forecast.horizon = 0",
        ),
        (
            {
                "release": {"metric": "test/rmse", "max_metric": 0.5},
                "data": {"forecast": {"differencing": "log"}},
            },
            "data.forecast.differencing = 'log'",
        ),
        *(
            (
                {
                    "release": {"metric": "test/rmse", "max_metric": 0.5},
                    "data": {"forecast": {"interval_level": level}},
                },
                f"data.forecast.interval_level = {level}: expected a coverage level strictly "
                "between 0 and 1",
            )
            for level in (1.0, 0.0, 1.5, -0.1)
        ),
        *(
            (
                {
                    "release": {"metric": "test/rmse", "max_metric": 0.5},
                    "data": {"forecast": {"interval_decays": decays}},
                },
                "data.forecast.interval_decays",
            )
            for decays in ([0.0], [1.0, 1.5], [])
        ),
        (
            {
                "release": {
                    "metric": "test/rmse",
                    "max_metric": 0.5,
                    "interval_coverage_tolerance": 1.5,
                },
            },
            "release.interval_coverage_tolerance = 1.5",
        ),
    ],
)
def test_forecasting_config_errors_name_the_key(extra: dict, message: str) -> None:
    from tests.conftest import merge

    with pytest.raises(ConfigError) as err:
        parse_config(merge(FORECAST, extra))
    assert message in str(err.value)


def test_interval_level_defaults_to_90_percent_and_the_tolerance_to_off() -> None:
    from tests.conftest import merge

    forecast = merge(FORECAST, {"release": RMSE})
    cfg = parse_config(forecast)
    assert cfg.data.forecast.interval_level == 0.9
    assert cfg.data.forecast.interval_decays == [1.0]  # exchangeable split conformal
    assert cfg.release.interval_coverage_tolerance is None
    tolerant = merge(forecast, {"release": {"interval_coverage_tolerance": 0.05}})
    assert parse_config(tolerant).release.interval_coverage_tolerance == 0.05


def test_a_classification_task_refuses_an_interval_coverage_tolerance() -> None:
    with pytest.raises(ConfigError, match=r"release\.interval_coverage_tolerance = 0\.05 does not"):
        parse_config({"release": {"interval_coverage_tolerance": 0.05}})


def test_a_classification_task_refuses_a_forecast_metric() -> None:
    with pytest.raises(ConfigError, match=r"train\.monitor = 'val/rmse' does not fit"):
        parse_config({"train": {"monitor": "val/rmse"}})


# -- the YAML itself: strict and bounded, refused before anything is built ---------------------

#: A "billion laughs" document: nine levels of ten aliases, 10^9 strings once expanded.
LAUGHS = "lol0: &a0 [lol]\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  lr: 0.1\nmodel: {}\ntrain:\n  lr: 0.2\n", "line 4: key 'train' appears twice"),
        ("train:\n  lr: 0.1\n  lr: 0.2\n", "line 3: key 'lr' appears twice in one mapping"),
        (LAUGHS, "line 4: aliases expand to more than 1000 values"),
        ("a: &a [1, *a]\n", "line 1: an alias refers to the mapping or list it is in"),
        ("seed: !!python/object/apply:os.system [echo]\n", "line 1: tag 'tag:yaml.org,2002:python"),
        ("seed: !!binary aGk=\n", "is not allowed (plain YAML values only"),
        ("seed: !custom 1\n", "line 1: tag '!custom' is not allowed"),
        ("data: " + "[" * 100_000 + "]" * 100_000 + "\n", "line 1: nested deeper than 64 levels"),
        ("seed: " + "9" * 5000 + "\n", "a value cannot be read"),
        ("model: [unclosed\n", "line 2: not valid YAML"),
    ],
    ids=["duplicate section", "duplicate key", "billion laughs", "recursive alias", "python tag",
         "binary tag", "custom tag", "deep nesting", "5000-digit int", "unclosed list"],
)  # fmt: skip
def test_bad_yaml_is_one_bounded_line_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(params)
    line = str(err.value)
    assert "\n" not in line and len(line) < 400, line
    assert line.startswith(f"{params}") and message in line, line


def test_small_aliases_and_core_tags_still_read(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("model: &m {hidden_size: 8}\ntrain: {lr: !!float 1}\n")
    assert load_config(params).model.hidden_size == 8
    assert load_config(params).train.lr == 1.0


def test_an_oversized_or_non_utf8_params_file_is_refused_unparsed(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\n# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="bytes, more than a params file holds"):
        load_config(params)
    params.write_bytes(b"seed: 1\nmodel: {cell: \xff}\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(params)


def test_messages_quote_user_values_cut_to_a_bounded_length() -> None:
    huge = "x" * 10_000_000
    cases = [
        {"model": {"cell": huge}},
        {"train": {"monitor": huge}},
        {"model": {huge: 1}},
        {f"typo{i}": i for i in range(500)},
        {"tune": {"space": {f"model.{huge}": {"type": "int", "low": 1, "high": 2}}}},
        {"release": {"metric": huge}},
    ]
    for raw in cases:
        with pytest.raises(ConfigError) as err:
            parse_config(raw)
        message = str(err.value)
        assert "\n" not in message and len(message) < 1200, message[:2000]
        assert "…" in message or "..." in message or "more" in message, message


def test_a_bad_value_names_its_line_unless_an_override_set_it(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\nmodel:\n  hidden_size: 8\n  cell: mamba\n")
    with pytest.raises(ConfigError) as err:
        load_config(params)
    assert f"invalid configuration in {params}: line 4: model.cell = 'mamba'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(params, {"model.cell": "tree"})
    assert ": model.cell = 'tree'" in str(err.value) and "line 4" not in str(err.value)
