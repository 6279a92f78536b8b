"""A trained network outside Lightning: what evaluate, export and benchmark load and run.

Those stages only read a checkpoint and run the network forward, so they import torch and
`SequenceNet`, not Lightning (whose import alone costs about as much as the work they do).
Training (`seqops.model.training`) writes Lightning checkpoints; `load_network` reads the two
entries of one that a forward pass needs: the constructor arguments `LitSequenceModel` saved
as hyperparameters and the `net.*` weights.

    net, hparams = load_network(Path("models/model.ckpt"))   # SequenceNet / EnsembleNet, eval
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def use_threads(threads: int) -> None:
    """PyTorch intra-op threads of this process (`train.threads`; 0 keeps PyTorch's default).

    Set by every stage that runs torch, not through OMP_NUM_THREADS: `dvc repro`, `make repro`
    and tuning workers then all get it. One thread per process keeps a shared machine from
    being oversubscribed (benchmarks/scaling.py). Runs are bit-identical for one thread count;
    another count changes float sums in the 7th digit."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def load_network(checkpoint: Path) -> tuple[Any, dict[str, Any]]:
    """The trained network of a checkpoint, on the CPU in eval mode, and the system's
    hyperparameters (`network`, `n_features`, `n_outputs`, ...): a `SequenceNet`, or an
    `EnsembleNet` of them when the checkpoint holds `ensemble: N` members (`train.ensemble`).

    `weights_only=True`: the checkpoint is unpickled by torch's restricted loader (tensors,
    containers and primitives only), so a tampered file cannot run code when it is read."""
    import torch

    from seqops.model.network import EnsembleNet, SequenceNet

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = dict(state["hyper_parameters"])
    members = [
        SequenceNet(hparams["n_features"], hparams["n_outputs"], **hparams["network"])
        for _ in range(hparams.get("ensemble", 1))
    ]
    net: torch.nn.Module = members[0]
    if len(members) > 1:
        net = EnsembleNet(members, probabilities=ensemble_averages_probabilities(hparams))
    weights = {k[4:]: v for k, v in state["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(weights)
    return net.eval(), hparams


def ensemble_averages_probabilities(hparams: dict[str, Any]) -> bool:
    """Whether an ensemble of these systems averages class probabilities (classifiers) or
    outputs (regression, forecasting)."""
    return bool(hparams["objective"]["kind"] == "classification")
