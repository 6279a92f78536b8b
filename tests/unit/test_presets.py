"""Presets hold only what differs from params.yaml; `seqops preset NAME` merges one over it,
validated first, comments kept, `tune.space` replaced whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from seqops import presets
from seqops.cli import main
from seqops.config import load_config, parse_config
from seqops.errors import ConfigError
from tests.conftest import REPO, preset_params


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "params", tmp_path / "params")
    return tmp_path


@pytest.mark.parametrize("name", ["sst2", "co2", "tecator"])
def test_each_preset_holds_only_differences_and_applies(workspace: Path, name: str) -> None:
    base = yaml.safe_load((workspace / "params.yaml").read_text())
    preset = yaml.safe_load((workspace / "params" / f"{name}.yaml").read_text())

    def same_leaves(extra: dict, under: dict, trail: str = "") -> list[str]:
        out = []
        for key, value in extra.items():
            path = f"{trail}{key}"
            if path == "tune.space" or key not in under:
                continue
            if isinstance(value, dict) and isinstance(under[key], dict):
                out += same_leaves(value, under[key], f"{path}.")
            elif value == under[key]:
                out.append(path)
        return out

    assert same_leaves(preset, base) == []  # nothing repeated from params.yaml
    assert main(["preset", name, "--params", str(workspace / "params.yaml"),
                 "--presets", str(workspace / "params")]) == 0  # fmt: skip
    applied = load_config(workspace / "params.yaml")
    assert applied.model_dump() == parse_config(preset_params(name)).model_dump()


def test_apply_keeps_comments_replaces_the_space_and_reports_changes(workspace: Path) -> None:
    changed = presets.apply("co2", workspace / "params.yaml", workspace / "params")
    text = (workspace / "params.yaml").read_text()
    assert "# seqops parameters: the single source of truth." in text  # params.yaml's own
    assert "# months the model reads" in text  # the preset's comment on lookback
    space = yaml.safe_load(text)["tune"]["space"]
    co2_space = yaml.safe_load((workspace / "params" / "co2.yaml").read_text())["tune"]["space"]
    assert space == co2_space  # replaced whole: no leftover of the default space
    assert changed["data.task"] == ("sequence_classification", "forecasting")
    assert changed["data.forecast.lookback"] == (None, 36)
    assert "seed" not in changed


def test_an_unknown_preset_names_the_ones_there_and_writes_nothing(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (workspace / "params.yaml").read_bytes()
    rc = main(["preset", "sst", "--params", str(workspace / "params.yaml"),
               "--presets", str(workspace / "params")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "preset 'sst'" in err and "co2, shakespeare, sst2, tecator" in err
    assert (workspace / "params.yaml").read_bytes() == before


def test_a_preset_that_does_not_validate_leaves_params_untouched(workspace: Path) -> None:
    (workspace / "params" / "bad.yaml").write_text("model:\n  hiden_size: 3\n")
    before = (workspace / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"model.hiden_size = 3: unknown key"):
        presets.apply("bad", workspace / "params.yaml", workspace / "params")
    assert (workspace / "params.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model:\n  hidden_size: 8\n  hidden_size: 16\n", "key 'hidden_size' appears twice"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join(['*a'] * 10)}]\n" for i in range(12)),
            "aliases expand to more than 1000 values",
        ),
        ("seed: !!python/name:os.system\n", "is not allowed"),
    ],
    ids=["duplicate key", "alias expansion", "python tag"],
)
def test_a_preset_ruamel_would_read_is_refused_like_params(
    workspace: Path, text: str, message: str
) -> None:
    (workspace / "params" / "bad.yaml").write_text(text)
    before = (workspace / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=f"bad.yaml, line \\d+: .*{message}"):
        presets.apply("bad", workspace / "params.yaml", workspace / "params")
    assert (workspace / "params.yaml").read_bytes() == before
