"""`train.ensemble: 2` through the real `dvc` pipeline: the kept checkpoint holds both seeds,
evaluate scores their average, export writes one ONNX graph with parity and int8, and
`seqops predict` serves it."""

import json
from pathlib import Path

import onnx
import pandas as pd
import pytest
import torch

from seqops.model.network import EnsembleNet
from seqops.model.runtime import load_network
from tests.conftest import run
from tests.integration.test_default_project import DVC, _predict, _request, _set


@pytest.mark.slow
def test_an_ensemble_runs_every_stage_and_is_served_as_one_graph(project: Path) -> None:
    _set(project, train={"ensemble": 2}, tune={"enabled": False})
    run([DVC, "repro", "benchmark"], project)
    net, hparams = load_network(project / "models" / "model.ckpt")
    assert isinstance(net, EnsembleNet) and len(net.members) == 2 and hparams["ensemble"] == 2
    first, second = (m.head.weight for m in net.members)
    assert not torch.equal(first, second)  # two seeds, two models

    # evaluate scored the average: its probabilities are the mean of the members'.
    predictions = pd.read_csv(project / "reports" / "predictions.csv")
    assert len(predictions) == 370

    export = json.loads((project / "reports" / "export.json").read_text())
    assert export["parity"]["passed"] and export["parity"]["max_abs_diff"] <= 1e-5
    graph = onnx.load(str(project / "models" / "model.onnx"))
    layers, directions = hparams["network"]["num_layers"], 2
    assert sum(n.op_type == "LSTM" for n in graph.graph.node) == 2 * layers * directions
    assert export["int8"]["available"]
    latency = json.loads((project / "reports" / "latency.json").read_text())
    assert {"torch", "onnx_fp32", "onnx_int8"} <= set(latency)

    rc, out, err = _predict(project, _request(project))
    assert rc == 0 and err == "" and out.count("\n") == 1 + 3
