"""Checkpoints are read with torch's restricted unpickler (`weights_only=True`): a checkpoint
carrying a Python object that would run code on load is refused, and the code never runs."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from seqops.model.runtime import load_network
from seqops.model.training import load_system


class _RunsCodeOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("load", [load_system, load_network], ids=["lightning", "runtime"])
def test_a_checkpoint_with_a_code_running_object_is_refused(tmp_path: Path, load: Any) -> None:
    marker = tmp_path / "ran"
    checkpoint = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _RunsCodeOnLoad(marker)}}, checkpoint)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load(checkpoint)
    assert not marker.exists()
