"""A preset applied with `seqops preset` is seen by DVC param by param (the real `dvc` CLI)."""

import json
from pathlib import Path

from tests.conftest import BIN, run


def test_dvc_params_diff_lists_every_param_a_preset_changed(project: Path) -> None:
    run([str(BIN / "seqops"), "preset", "sst2"], project)
    diff = json.loads(run([str(BIN / "dvc"), "params", "diff", "--json"], project).stdout)
    changed = diff["params.yaml"]
    assert changed["data.task"] == {"old": "sequence_classification", "new": "text_classification"}
    assert changed["data.path"]["new"] == "data/raw/sst2/stsa.binary.train"
    assert changed["train.patience"]["new"] == 2
    assert "tune.space.model.pooling.choices" in changed  # the replaced search space
    assert (project / "data" / "raw" / "sst2" / "stsa.binary.train").is_file()  # shipped data
