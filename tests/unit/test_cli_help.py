"""Every `seqops` sub-command says what it does (`seqops --help` lists it with a line,
`seqops <cmd> --help` opens with a description), and `seqops --version` prints the installed
package's version."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from seqops.cli import STAGES, _parser


def _subcommands() -> tuple[argparse._SubParsersAction, dict[str, argparse.ArgumentParser]]:
    (sub,) = (a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub, dict(sub.choices)


def test_every_stage_is_a_subcommand() -> None:
    _, commands = _subcommands()
    assert set(STAGES) <= set(commands)


@pytest.mark.parametrize("name", sorted(_subcommands()[1]))
def test_every_subcommand_has_a_help_line_and_a_description(name: str) -> None:
    sub, commands = _subcommands()
    helps = {action.dest: action.help for action in sub._choices_actions}
    assert (helps.get(name) or "").strip(), f"seqops {name}: no help line in `seqops --help`"
    assert (commands[name].description or "").strip(), f"seqops {name} --help: no description"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        _parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"seqops {version('seqops')}"
