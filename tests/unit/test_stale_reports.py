"""A report made under params `params.yaml` no longer holds is stale (`lockfile.verify_fresh`):
dvc.lock records the params each stage ran with; a changed one makes that stage's outputs and
everything downstream of them stale, and a reader refuses them in one line naming them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seqops.lockfile import StaleReport, stale_stages, verify_fresh

PARAMS = {
    "seed": 42,
    "data": {"task": "sequence_classification", "id_column": "id"},
    "train": {"lr": 0.001, "max_epochs": 3},
    "export": {"parity_atol": 1e-05},
    "release": {"min_metric": 0.9},
}


def _stage(params: dict[str, Any], deps: list[str], outs: list[str]) -> dict[str, Any]:
    return {
        "params": {"params.yaml": params},
        "deps": [{"path": d, "md5": "0"} for d in deps],
        "outs": [{"path": o, "md5": "0"} for o in outs],
    }


LOCK = {
    "schema": "2.0",
    "stages": {
        "prepare": _stage({"seed": 42, "data": PARAMS["data"]}, ["data/raw"],
                          ["data/processed", "reports/data.json"]),
        "train": _stage({"seed": 42, "train": PARAMS["train"]}, ["data/processed"],
                        ["models/model.ckpt", "reports/train.json"]),
        "evaluate": _stage({}, ["models/model.ckpt", "data/processed"], ["reports/metrics.json"]),
        "export": _stage({"data.id_column": "id", "export": {"parity_atol": 1e-05}},
                         ["models/model.ckpt"], ["models/model.onnx", "reports/export.json"]),
        "release": _stage({"release": PARAMS["release"]}, ["reports/metrics.json"],
                          ["reports/release.json"]),
    },
}  # fmt: skip


def _project(tmp_path: Path, **changes: dict[str, Any]) -> Path:
    params = {k: dict(v) if isinstance(v, dict) else v for k, v in PARAMS.items()}
    for section, values in changes.items():
        params[section].update(values)
    # As a user writes it: `1.0e-5`, which DVC's lock writes back as `1e-05`.
    text = yaml.safe_dump(params, sort_keys=False).replace("1.0e-05", "1.0e-5")
    (tmp_path / "params.yaml").write_text(text)
    return tmp_path


def test_todays_params_make_nothing_stale(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert stale_stages(root, LOCK) == {}
    verify_fresh(root, [Path("reports/metrics.json"), Path("reports/export.json")], LOCK)


def test_a_changed_param_makes_its_stage_and_downstream_stale(tmp_path: Path) -> None:
    root = _project(tmp_path, train={"lr": 0.01})
    assert set(stale_stages(root, LOCK)) == {"train", "evaluate", "export", "release"}
    with pytest.raises(StaleReport) as refused:
        verify_fresh(root, [Path("reports/data.json"), Path("reports/metrics.json")], LOCK)
    message = str(refused.value)
    assert message.startswith("reports/metrics.json is stale: made under other params")
    assert "params.yaml train.lr: 0.001 when it ran, 0.01 now" in message
    assert "re-run `dvc repro`" in message
    assert "reports/data.json" not in message and "\n" not in message
    assert refused.value.exit_code == 4


def test_a_dotted_param_and_a_changed_section_are_compared(tmp_path: Path) -> None:
    root = _project(tmp_path, data={"id_column": "series"})
    stale = stale_stages(root, LOCK)
    assert set(stale) == set(LOCK["stages"])  # prepare reads data, so all is downstream
    assert stale["export"] == "params.yaml data.id_column: 'id' when it ran, 'series' now"


def test_release_params_leave_the_reports_it_reads_fresh(tmp_path: Path) -> None:
    root = _project(tmp_path, release={"min_metric": 0.95})
    assert set(stale_stages(root, LOCK)) == {"release"}
    verify_fresh(root, [Path("reports/metrics.json"), Path("models/model.onnx")], LOCK)


def test_without_a_lock_nothing_is_checked(tmp_path: Path) -> None:
    root = _project(tmp_path, train={"lr": 0.01})
    verify_fresh(root, [Path("reports/metrics.json")])  # no dvc.lock in the workspace
    (root / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    with pytest.raises(StaleReport, match=r"reports/metrics\.json is stale"):
        verify_fresh(root, [Path("reports/metrics.json")])


@pytest.mark.parametrize(
    ("recorded", "current", "same"),
    [("1e-05", 1e-05, True), (1e-05, "1e-5", True), ("yes", True, True), (False, "off", True),
     (True, 1, False), (3, 4, False), ("lstm", "gru", False), (None, None, True),
     ({"a": [1, 2]}, {"a": [1, 2.0]}, True), ({"a": 1}, {"a": 1, "b": 2}, False)],
)  # fmt: skip
def test_values_compare_across_yaml_versions(recorded: Any, current: Any, same: bool) -> None:
    from seqops.lockfile import _same

    assert _same(recorded, current) is same
