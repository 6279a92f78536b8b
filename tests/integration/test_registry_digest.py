"""The registry knows the bundle: a registered version records the sha256 of its `bundle.sha256`.

On the tiny default project (`built_project`, registered as `seqops` v1 by its release stage),
a bundle rewritten in the artifact store together with its integrity record (so the record
still agrees with every file) is refused, with one line, by `seqops predict --model
models:/seqops/1` and by the loader MLflow's scoring server runs; the untouched one answers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from seqops.registry import BUNDLE_TAG
from tests.conftest import BIN, run
from tests.integration.test_serving_mlflow import raw_test_frame

SEQOPS = str(BIN / "seqops")


def _client(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _predict(project: Path, model: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    raw_test_frame(project, 3).to_csv(tmp / "in.csv", index=False)
    args = ["predict", "--model", model, "--input", str(tmp / "in.csv")]
    return run([SEQOPS, *args], project, check=False)


def _registered_files(client: MlflowClient) -> Path:
    """Where the artifact store keeps `seqops` v1's bundle files."""
    version = client.get_model_version("seqops", "1")
    model_id = version.model_id or version.source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    return Path(location.removeprefix("file://")) / "artifacts"


def test_a_consistently_rewritten_registered_bundle_is_refused(
    built_project: Path, tmp_path: Path
) -> None:
    client = _client(built_project)
    record = built_project / "models" / "bundle.sha256"
    tags = client.get_model_version("seqops", "1").tags
    assert tags[BUNDLE_TAG] == hashlib.sha256(record.read_bytes()).hexdigest()

    fine = _predict(built_project, "models:/seqops/1", tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert len(fine.stdout.strip().splitlines()) == 4  # header + 3 sequences

    # Rewrite the registered preprocessing.json (a shifted scaler: every answer moves) and the
    # record beside it, so that the record agrees with every file it lists.
    files = _registered_files(client)
    pre_file = files / "preprocessing.json"
    pre = json.loads(pre_file.read_text())
    pre["data"]["scaler"]["mean"] = [m + 1.0 for m in pre["data"]["scaler"]["mean"]]
    pre_file.write_text(json.dumps(pre))
    digest = hashlib.sha256(pre_file.read_bytes()).hexdigest()
    lines = [
        f"{digest}  preprocessing.json" if line.endswith("  preprocessing.json") else line
        for line in (files / "bundle.sha256").read_text().splitlines()
    ]
    (files / "bundle.sha256").write_text("\n".join(lines) + "\n")

    for model in ("models:/seqops/1", "models:/seqops@candidate"):
        refused = _predict(built_project, model, tmp_path)
        assert refused.returncode == 2, (refused.stdout, refused.stderr)
        assert refused.stdout == ""
        err = refused.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "seqops v1" in err and "the registry records" in err, err

    # The scoring server's loader (`mlflow models serve -m models:/seqops/1` loads it so).
    script = (
        "import mlflow, sys\n"
        f"mlflow.set_tracking_uri('sqlite:///{built_project / 'mlflow.db'}')\n"
        "try:\n"
        "    mlflow.pyfunc.load_model('models:/seqops/1')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc); sys.exit(3)\n"
    )
    served = run([str(BIN / "python"), "-c", script], tmp_path, check=False)
    assert served.returncode == 3, (served.stdout, served.stderr)
    assert "the registry records" in served.stdout, served.stdout


def test_an_unknown_registered_model_is_one_line(built_project: Path, tmp_path: Path) -> None:
    refused = _predict(built_project, "models:/nosuch/1", tmp_path)
    assert refused.returncode == 2, refused.stderr
    err = refused.stderr.strip()
    assert len(err.splitlines()) == 1 and "models:/nosuch/1" in err, err


pytestmark = pytest.mark.slow
