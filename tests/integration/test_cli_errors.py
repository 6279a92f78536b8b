"""User errors through the real `seqops` CLI: one clear line, exit 2, nothing that looks valid."""

from pathlib import Path

import pandas as pd

from tests.conftest import BIN, run, write_params


def _prepare(tmp_path: Path, extra: dict) -> tuple[int, str]:
    write_params(tmp_path / "params.yaml", extra)
    proc = run([str(BIN / "seqops"), "prepare"], tmp_path, check=False)
    return proc.returncode, proc.stderr


def _no_outputs(root: Path) -> bool:
    return (
        not (root / "data" / "processed").exists() and not (root / "reports" / "data.json").exists()
    )


def test_params_typo_stops_before_any_work(tmp_path: Path) -> None:
    code, err = _prepare(tmp_path, {"model": {"hiden_size": 32}})
    assert code == 2
    assert "model.hiden_size = 32: unknown key (typo?)" in err
    assert "Traceback" not in err
    assert _no_outputs(tmp_path)


def test_missing_data_file(tmp_path: Path) -> None:
    code, err = _prepare(tmp_path, {"data": {"dataset": None, "path": "missing.csv"}})
    assert code == 2 and "data.path: missing.csv does not exist" in err
    assert _no_outputs(tmp_path)


def test_bad_data_after_a_good_run_removes_the_stale_outputs(tmp_path: Path) -> None:
    assert _prepare(tmp_path, {})[0] == 0
    assert (tmp_path / "reports" / "data.json").is_file()
    rows = [{"id": i // 3, "time": i % 3, "f": float(i), "label": "x"} for i in range(12)]
    pd.DataFrame(rows).assign(f=lambda d: d.f.astype(object)).to_csv(
        tmp_path / "d.csv", index=False
    )
    frame = pd.read_csv(tmp_path / "d.csv")
    frame.loc[4, "f"] = float("nan")
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, err = _prepare(tmp_path, {"data": {"dataset": None, "path": "d.csv"}})
    assert code == 2 and "column 'f' has a NaN or infinite value at row 4" in err
    assert _no_outputs(tmp_path)
