"""prepare: raw data → the task's train / val / test splits and metadata in `data/processed/`.

    seqops prepare [--params params.yaml]

The task's prepare part (`data.task`, see `seqops.tasks.parts.prepare`) reads and splits its
data and fits whatever turns raw input into model input on the training split only (a scaler,
a tokenizer, forecast windows). Writes `data/processed/{train,val,test}.npz`,
`preprocessing.json` (the task's typed `DataMeta`), the task's extra files, and
`reports/data.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqops import outputs
from seqops.config import load_config
from seqops.contracts import DataReport, LengthStats
from seqops.layout import PROCESSED_META, Layout, split_file
from seqops.tasks import get_task
from seqops.tasks.base import Prepared
from seqops.tasks.parts.prepare import get_prepare


def write(prepared: Prepared, layout: Layout) -> DataReport:
    """The processed directory (atomically) and the data report."""
    with outputs.atomic_dir(layout.processed) as tmp:
        for name, split in prepared.splits.items():
            split.save(tmp / split_file(name))
        prepared.meta.write(tmp / PROCESSED_META)
        for name, write_file in prepared.files.items():
            write_file(tmp / name)
        data_hash = outputs.hash_dir(tmp)
    splits = prepared.splits
    fields = {
        "task": prepared.meta.task,
        "n_train": len(splits["train"]),
        "n_val": len(splits["val"]),
        "n_test": len(splits["test"]),
        "n_features": len(prepared.meta.feature_names),
        "source": prepared.source,
        "data_hash": data_hash,
        "length": {
            name: LengthStats(
                min=int(s.lengths.min()),
                median=float(np.median(s.lengths)),
                max=int(s.lengths.max()),
            )
            for name, s in splits.items()
        },
        **prepared.report,
    }
    # the task's own report type: its `task` literal and its fields after the shared ones
    report = get_task(prepared.meta.task).parse_data_report(fields, layout.data_report)
    report.write(layout.data_report, layout.stage_metrics("prepare"))
    return report


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> DataReport:
    layout = layout or Layout()
    cfg = load_config(params)
    task = get_prepare(cfg.data.task)
    outputs.remove(layout.processed, layout.data_report, layout.stage_metrics("prepare"))
    report = write(task.prepare(cfg.data, cfg.seed), layout)
    print(task.summary(report))
    return report
