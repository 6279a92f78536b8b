"""Process-level settings of `seqops.model.training`: threads, DDP rank, supported strategies."""

from __future__ import annotations

import pytest
import torch

from seqops.config import parse_config
from seqops.errors import ConfigError
from seqops.model.training import _check_strategy, is_rank_zero, use_threads


def test_use_threads_sets_torch_and_zero_keeps_the_default() -> None:
    before = torch.get_num_threads()
    try:
        use_threads(1)
        assert torch.get_num_threads() == 1
        use_threads(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("env", "zero"),
    [({}, True), ({"LOCAL_RANK": "0"}, True), ({"LOCAL_RANK": "1"}, False), ({"RANK": "3"}, False)],
)
def test_rank_zero_from_the_launcher_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], zero: bool
) -> None:
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert is_rank_zero() is zero


@pytest.mark.parametrize(
    ("train", "world", "message"),
    [
        ({"devices": 2}, 2, "train.strategy: 'auto' with 2 devices: expected 'ddp'"),
        ({"strategy": "ddp_spawn"}, 1, "train.strategy: 'ddp_spawn': expected 'ddp'"),
        # under pytest, Lightning's launcher would re-run pytest for rank 1
        ({"devices": 2, "strategy": "ddp"}, 2, "run it through `seqops train`"),
        ({"strategy": "ddp", "refit_max_examples": 300}, 2, "set it to 0 with several devices"),
    ],
)
def test_unsupported_multi_process_setups_are_refused(
    train: dict[str, object], world: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _check_strategy(parse_config({"train": train}), world)


def test_one_device_ddp_is_fine() -> None:
    _check_strategy(parse_config({"train": {"strategy": "ddp", "batch_size": 33}}), 1)
