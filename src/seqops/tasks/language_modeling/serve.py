"""`language_modeling`'s export and serving part: text in, its likelihood out (`codec`), and
the raw test blocks as requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle
from seqops.errors import DataError
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
    blocks_file,
)
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.parts.serve import Codec, Quality, ServeTask

if TYPE_CHECKING:
    from seqops.serving import Predictor


def block_requests(
    processed: Path, bundle: Bundle[LanguageModelMeta], n: int | None = None
) -> pd.DataFrame:
    """The first `n` raw test blocks (all with None) as request rows: id `block<i>`, text."""
    from seqops.tasks.language_modeling.codec import TEXT_COLUMN

    path = processed / blocks_file("test")
    if not path.is_file():
        raise DataError(f"{path}: not found (run `seqops prepare`)")
    blocks = json.loads(path.read_text(encoding="utf-8"))[:n]
    return pd.DataFrame(
        {
            bundle.id_column: [f"block{i}" for i in range(len(blocks))],
            TEXT_COLUMN: [b["text"] for b in blocks],
        }
    )


class LanguageModelingServe(
    ServeTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics],
    LanguageModeling,
):
    """The per-step output, the served metric over the test blocks, the vocabulary file."""

    def output_shape(self, meta: LanguageModelMeta) -> list[str | int]:
        return contract.per_step_shape(meta.n_outputs)

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """The unit's metric of the served graph over the raw test blocks, each on its own."""
        from seqops.tasks.language_modeling.release import metric_value

        meta: LanguageModelMeta = predictor.bundle.data
        answer = predictor.predict_frame(block_requests(processed, predictor.bundle), "test blocks")
        scores = np.stack([answer["nll"].to_numpy(), answer["n_tokens"].to_numpy()], axis=1)
        return Quality(f"test/{meta.metric}", metric_value(meta.units, scores), True)

    def request_example(
        self, processed: Path, bundle: Bundle[LanguageModelMeta], n: int
    ) -> pd.DataFrame:
        return block_requests(processed, bundle, n)

    def bundle_files(self, meta: LanguageModelMeta) -> list[str]:
        return [meta.vocab]

    def codec(
        self, bundle: Bundle[LanguageModelMeta], files: dict[str, Path]
    ) -> Codec[LanguageModelMeta]:
        from seqops.tasks.language_modeling.codec import LanguageModelCodec

        return LanguageModelCodec(bundle, files[bundle.data.vocab])
