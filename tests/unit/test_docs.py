"""The README stays a guide (at most 300 lines), the docs' relative links and anchors resolve,
and nothing the repository ships refers to an issue by its number."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: `[text](target)` links in Markdown, outside code.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: A reference to a tracker entry: the word issue (or issues) and a number, or a hash sign
#: followed by up to four digits.
ISSUE_NUMBER = re.compile(r"\bissues? #?\d+|(?<![\w&/#])#\d{1,4}\b(?![\w-])", re.IGNORECASE)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def _prose(markdown: str) -> str:
    """The Markdown without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def test_the_readme_is_at_most_300_lines() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing_anchor = (
            file.exists()
            and anchor
            and file.suffix == ".md"
            and anchor not in _anchors(file.read_text("utf-8"))
        )
        if not file.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_nothing_refers_to_an_issue_number() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "README.md", "docs", "tests", ".ci", "src", "benchmarks", "params"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in {".md", ".py", ".sh", ".yaml", ".yml", ""} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ISSUE_NUMBER.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found[:20])
