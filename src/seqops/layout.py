"""Where each stage reads and writes, relative to the project root (dvc.yaml lists the same).

Stages take a `Layout` so tests can run the whole pipeline inside a temporary directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def evaluation_plots(self) -> Path:
        """The evaluate stage's plots (which ones depends on the task): one DVC output."""
        return self.plots / "evaluate"

    @property
    def best_params(self) -> Path:
        return self.models / "best_params.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.models / "model.ckpt"

    @property
    def run_file(self) -> Path:
        return self.models / "run.json"
