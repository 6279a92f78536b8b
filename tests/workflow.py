"""Run the release workflow's own steps (`.github/workflows/release.yml`) in a test project.

The steps that set up a runner (checkout, Python, `make install`, the DVC pull, `make repro`,
the artifact upload) are the test's to do; every other step runs as GitHub would run it: its
`run:` script under `bash -eo pipefail` in the project, its `env:` with `${{ }}` expressions
filled in, and its `if:` evaluated on the outcomes of the steps before it (a step without one
runs only while nothing has failed). `gh` is a stand-in on PATH that records each call and
fails the one `gh_fails` names, so a test can break publishing and see what the workflow does.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import REPO, run_env

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"

#: Steps that set up the runner: the test builds the project itself.
SET_UP = (
    "Install",
    "Model registry",
    "DVC remote (secret DVC_REMOTE_URL) - pull the committed outputs",
    "Pipeline (whatever the pull did not bring)",
    "Keep the run's outputs",
)

FAKE_GH = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$GH_LOG"
if [ -n "$GH_FAILS" ] && [[ "$*" == "$GH_FAILS"* ]]; then
  echo "gh: simulated failure: $*" >&2
  exit 1
fi
"""


@dataclass
class WorkflowRun:
    outcomes: dict[str, str] = field(default_factory=dict)  # step id or name -> outcome
    gh_calls: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return "failure" in self.outcomes.values()


def steps() -> list[dict]:
    """The workflow's steps, the set-up ones checked to be exactly `SET_UP` (a new step must
    be either run here or named there)."""
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    all_steps = job["steps"]
    named = {s.get("name") for s in all_steps if "run" in s or "uses" in s}
    missing = set(SET_UP) - named
    assert not missing, f"release.yml no longer has the set-up steps {missing}"
    return [s for s in all_steps if "run" in s and s.get("name") not in SET_UP]


def _expression(text: str, tag: str, secrets: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name == "github.ref_name":
            return tag
        if name == "github.token":
            return "test-token"
        if name.startswith("secrets."):
            return secrets.get(name.removeprefix("secrets."), "")
        raise AssertionError(f"release.yml: no stand-in for ${{{{ {name} }}}}")

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _condition(condition: str | None, run: WorkflowRun) -> bool:
    if condition is None:
        return not run.failed
    expr = condition.replace("&&", " and ").replace("||", " or ").replace("!=", " != ")
    expr = expr.replace("failure()", str(run.failed)).replace("always()", "True")
    expr = expr.replace("success()", str(not run.failed))
    expr = re.sub(
        r"steps\.([\w-]+)\.outcome", lambda m: repr(run.outcomes.get(m.group(1), "")), expr
    )
    assert "env." not in expr and "secrets." not in expr, f"unsupported if: {condition}"
    return bool(eval(expr, {"__builtins__": {}}))  # the repository's own workflow file


def run_release(
    project: Path, tag: str, env: dict[str, str], tmp: Path, gh_fails: str = ""
) -> WorkflowRun:
    """Run the release workflow's steps for `tag` in `project` (which has `.venv` and `.ci`
    reachable), with `env` as the job's secrets-derived environment."""
    tmp.mkdir(parents=True, exist_ok=True)
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    log = tmp / f"gh-{tag}.log"
    log.write_text("")
    base = run_env()
    base.update(env)
    base.update(
        PATH=f"{bin_dir}{os.pathsep}{base['PATH']}",
        GH_LOG=str(log),
        GH_FAILS=gh_fails,
        GITHUB_STEP_SUMMARY=str(tmp / "summary.md"),
        GITHUB_ENV=str(tmp / "github_env"),
        RUNNER_TEMP=str(tmp),
    )
    result = WorkflowRun()
    for step in steps():
        key = step.get("id") or step["name"]
        if not _condition(step.get("if"), result):
            result.outcomes[key] = "skipped"
            continue
        step_env = dict(base)
        for name, value in (step.get("env") or {}).items():
            step_env[name] = _expression(str(value), tag, env)
        script = tmp / "step.sh"
        script.write_text(step["run"])
        start = time.monotonic()
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=project,
            env=step_env,
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - start
        result.output.append(
            f"## {step['name']} (exit {proc.returncode}, {took:.1f} s)\n{proc.stdout}{proc.stderr}"
        )
        result.outcomes[key] = "success" if proc.returncode == 0 else "failure"
    result.gh_calls = log.read_text().splitlines()
    return result
