"""`text_classification`'s seam: name, metadata, report (see the package's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from seqops.contracts import DataMeta, FileName
from seqops.tasks.classifier.task import ClassifierTask, ClassReport

if TYPE_CHECKING:
    from seqops.config import DataConfig

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.


def texts_file(split: str) -> str:
    """A split's raw texts, in the order of its token ids."""
    return f"{split}.texts.json"


#: The raw test texts, in the order of the test split (what the release scores).
TEST_TEXTS_FILE = texts_file("test")
TOKENIZER_FILE = "tokenizer.json"


class TextMeta(DataMeta):
    classifier: ClassVar[bool] = True

    task: Literal["text_classification"] = "text_classification"
    input: Literal["tokens"] = "tokens"
    tokenizer: FileName = TOKENIZER_FILE
    vocab_size: int = Field(ge=3)
    max_len: int = Field(ge=1)
    text_column: str


class TextReport(ClassReport):
    task: Literal["text_classification"] = "text_classification"
    vocab_size: int
    test_unknown_token_rate: float
    """Share of the test split's tokens the training vocabulary does not hold (`[UNK]`)."""

    def task_numbers(self) -> dict[str, Any]:
        return {
            **super().task_numbers(),
            "vocab_size": self.vocab_size,
            "test_unknown_token_rate": self.test_unknown_token_rate,
        }


class TextClassification(ClassifierTask[TextMeta, TextReport]):
    """The seam."""

    name = "text_classification"
    meta_type = TextMeta
    data_report_type = TextReport
    reads = (
        "data.tokenizer.",
        "data.text_column",
        "data.val_path",
        "data.test_path",
        "model.embedding_dim",
        "model.embeddings_path",
        "model.freeze_embeddings",
        "model.ngram_buckets",
    )
    ignored = (
        "data.dataset",
        "data.time_column",
        "data.feature_columns",
        "train.noise_std",
    )

    def check_data(self, data: DataConfig) -> None:
        if data.path is None:
            raise ValueError("data.task=text_classification reads data.path; set dataset: null")
