"""The bundle is served only whole: files matching the sha256 `preprocessing.json` records,
moved into place with `preprocessing.json` last; outputs get the umask's file mode."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.cli import main
from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.onnx_export import publish_bundle, quantize_int8, seal_bundle
from seqops.serving import Predictor, predict_file, read_digests
from seqops.tasks import read_bundle
from tests.unit.bundles import classification_meta, reseal, write_bundle

FEATURES = ["a", "b"]
LABELS = ["no", "yes"]


def _net(seed: int) -> SequenceNet:
    torch.manual_seed(seed)
    return SequenceNet(2, 2, cell="lstm", hidden_size=4, num_layers=1).eval()


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sealed bundle with an int8 model (kept pristine: tests copy it)."""
    models = write_bundle(
        tmp_path_factory.mktemp("models"), _net(0), classification_meta(FEATURES, LABELS)
    )
    assert quantize_int8("lstm", models / contract.MODEL_FILE, models / contract.INT8_FILE) is None
    seal_bundle(models, read_bundle(models / contract.PREPROCESSING_FILE))
    return models


@pytest.fixture
def bundle(sealed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sealed, tmp_path / "models"))


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.onnx of another network with the same contract (a file from another export)."""
    models = write_bundle(
        tmp_path_factory.mktemp("other"), _net(1), classification_meta(FEATURES, LABELS)
    )
    return models / contract.MODEL_FILE


def _request(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = [
        {"id": i, "time": t, "a": rng.normal(), "b": rng.normal()}
        for i in range(3)
        for t in range(4)
    ]
    path = tmp_path / "request.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _predict(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["predict", "--model", str(bundle), "--input", str(_request(tmp_path))])
    return rc, capsys.readouterr().err


def test_a_sealed_bundle_records_each_file_and_serves(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = read_bundle(bundle / contract.PREPROCESSING_FILE).sha256
    assert recorded == {
        name: outputs.sha256(bundle / name) for name in (contract.MODEL_FILE, contract.INT8_FILE)
    }
    assert _predict(bundle, tmp_path, capsys) == (0, "")
    Predictor.load(bundle, int8=True)


def test_a_flipped_byte_in_the_model_is_refused_naming_the_file(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = bundle / contract.MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    rc, err = _predict(bundle, tmp_path, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and f"{model}: sha256 differs" in err, err
    Predictor.load(bundle, int8=True)  # the int8 file still matches


def test_a_model_from_another_export_is_refused(
    bundle: Path, other_model: Path, tmp_path: Path
) -> None:
    shutil.copyfile(other_model, bundle / contract.MODEL_FILE)
    with pytest.raises(DataError, match=f"{bundle / contract.MODEL_FILE}: sha256 differs"):
        Predictor.load(bundle)


def test_an_altered_int8_model_is_refused(bundle: Path, other_model: Path) -> None:
    shutil.copyfile(other_model, bundle / contract.INT8_FILE)
    Predictor.load(bundle)
    with pytest.raises(DataError, match=f"{bundle / contract.INT8_FILE}: sha256 differs"):
        Predictor.load(bundle, int8=True)


def test_a_bundle_without_digests_is_refused(bundle: Path) -> None:
    pre = bundle / contract.PREPROCESSING_FILE
    raw = json.loads(pre.read_text())
    del raw["sha256"]
    pre.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=f"{pre}: sha256 differs from the one"):
        Predictor.load(bundle)  # the integrity record covers preprocessing.json
    reseal(bundle)
    with pytest.raises(DataError, match=f"{pre}: records no sha256"):
        Predictor.load(bundle)
    (bundle / contract.DIGESTS_FILE).unlink()
    with pytest.raises(DataError, match=r"bundle\.sha256: not found: the bundle has no integrity"):
        Predictor.load(bundle)


def test_the_integrity_record_covers_every_file_in_sha256sum_form(bundle: Path) -> None:
    record = bundle / contract.DIGESTS_FILE
    names = [contract.INT8_FILE, contract.MODEL_FILE, contract.PREPROCESSING_FILE]
    assert record.read_text() == "".join(f"{outputs.sha256(bundle / n)}  {n}\n" for n in names)
    assert read_digests(record) == {n: outputs.sha256(bundle / n) for n in names}


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw["data"]["label_names"].reverse(),
        lambda raw: raw["data"]["scaler"]["std"].__setitem__(0, 2.0),
        lambda raw: raw.update(max_length=raw["max_length"] + 1),
    ],
    ids=["reversed labels", "another std", "another max_length"],
)
def test_metadata_changed_after_export_is_refused_though_it_validates(
    bundle: Path, change: Any
) -> None:
    pre = bundle / contract.PREPROCESSING_FILE
    raw = json.loads(pre.read_text())
    change(raw)
    pre.write_text(json.dumps(raw))
    read_bundle(pre)  # a valid bundle: only the record tells it is not the exported one
    with pytest.raises(DataError, match=f"{pre}: sha256 differs from the one .*bundle.sha256"):
        Predictor.load(bundle)


def test_a_swapped_model_with_its_digest_written_in_is_refused(
    bundle: Path, other_model: Path
) -> None:
    shutil.copyfile(other_model, bundle / contract.MODEL_FILE)
    pre = bundle / contract.PREPROCESSING_FILE
    raw = json.loads(pre.read_text())
    raw["sha256"][contract.MODEL_FILE] = outputs.sha256(bundle / contract.MODEL_FILE)
    pre.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=f"{pre}: sha256 differs"):
        Predictor.load(bundle)
    reseal(bundle)  # the whole record rewritten too: here the registry's digest must decide
    Predictor.load(bundle)


def test_the_graph_is_checked_against_the_metadata(bundle: Path, tmp_path: Path) -> None:
    """A bundle whose model has another head than its labels say is refused when opened."""
    three = write_bundle(
        tmp_path / "three",
        SequenceNet(2, 3, cell="lstm", hidden_size=4, num_layers=1).eval(),
        classification_meta(FEATURES, ["a", "b", "c"]),
    )
    shutil.copyfile(three / contract.MODEL_FILE, bundle / contract.MODEL_FILE)
    _seal_model(bundle)
    with pytest.raises(DataError, match=r"graph shapes .* do not match"):
        Predictor.load(bundle)


def _seal_model(bundle: Path) -> None:
    pre = bundle / contract.PREPROCESSING_FILE
    raw = json.loads(pre.read_text())
    raw["sha256"][contract.MODEL_FILE] = outputs.sha256(bundle / contract.MODEL_FILE)
    pre.write_text(json.dumps(raw))
    reseal(bundle)


def test_an_int8_model_the_bundle_does_not_record_is_refused(bundle: Path) -> None:
    int8 = bundle / contract.INT8_FILE
    int8.unlink()
    seal_bundle(bundle, read_bundle(bundle / contract.PREPROCESSING_FILE))
    shutil.copyfile(bundle / contract.MODEL_FILE, int8)
    with pytest.raises(DataError, match=f"{int8}: not part of the bundle"):
        Predictor.load(bundle, int8=True)


def test_publish_moves_the_bundle_in_with_preprocessing_last(
    bundle: Path, other_model: Path, tmp_path: Path
) -> None:
    # The previous bundle in models/ has an int8 model; the new one has none and another model.
    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copyfile(other_model, staging / contract.MODEL_FILE)
    seal_bundle(staging, read_bundle(bundle / contract.PREPROCESSING_FILE))
    publish_bundle(staging, bundle)
    assert sorted(p.name for p in staging.iterdir()) == []
    assert not (bundle / contract.INT8_FILE).exists()  # stale: not part of the new bundle
    assert contract.INT8_FILE not in read_digests(bundle / contract.DIGESTS_FILE)
    assert (bundle / contract.MODEL_FILE).read_bytes() == other_model.read_bytes()
    Predictor.load(bundle)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_mode_open_and_mkdir_give(tmp_path: Path, umask: None) -> None:
    assert _mode(outputs.write_json(tmp_path / "a.json", {"x": 1})) == 0o640
    with outputs.atomic_dir(tmp_path / "dir") as tmp:
        (tmp / "f").write_text("x")
    assert _mode(tmp_path / "dir") == 0o750
    assert _mode(outputs.make_temp_dir(tmp_path, ".t-")) == 0o750
    os.umask(0o022)
    assert _mode(outputs.write_text(tmp_path / "b.txt", "x")) == 0o644
    assert _mode(outputs.write_yaml(tmp_path / "a.json", {"x": 1})) == 0o644  # replaced


def test_atomic_path_never_writes_through_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file is created new (O_EXCL): a symlink at the name it would take is
    skipped, never followed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.bin"
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(outputs.secrets, "token_hex", lambda n: next(names))
    os.symlink(victim, tmp_path / ".out.bin.planted.tmp")
    with outputs.atomic_path(target) as tmp:
        assert tmp.name == ".out.bin.fresh.tmp" and not tmp.is_symlink()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and victim.read_text() == "precious"
    assert not (tmp_path / ".out.bin.fresh.tmp").exists()


def test_predictions_that_cannot_be_written_are_one_error_and_no_file(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.csv"

    def refuse(path: Path, text: str) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outputs, "write_text", refuse)
    with pytest.raises(DataError, match=f"{out}: cannot write the predictions .Permission denied"):
        predict_file(bundle, _request(tmp_path), out)
    assert not out.exists()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match=f"{out}: --output's folder {tmp_path} is not writable"):
        predict_file(bundle, _request(tmp_path), out)
