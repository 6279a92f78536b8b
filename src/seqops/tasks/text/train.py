"""`text_classification`'s train part: the classifier's objective over token ids through an
embedding, optionally initialised from pretrained vectors (`model.embeddings_path`), and
optionally an n-gram path beside the recurrent one (`model.ngram_buckets`), fitted here before
training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.tasks.classifier.train import ClassifierTrain
from seqops.tasks.text.task import TextClassification, TextMeta, TextReport

if TYPE_CHECKING:
    from torch import nn

    from seqops.config import ModelConfig


class TextClassificationTrain(ClassifierTrain[TextMeta, TextReport], TextClassification):
    def network_args(self, meta: TextMeta, processed: Path, model: ModelConfig) -> dict[str, Any]:
        return {
            "vocab_size": meta.vocab_size,
            "embedding_dim": model.embedding_dim,
            "ngram_buckets": model.ngram_buckets,
        }

    def init_model(
        self, net: nn.Module, meta: TextMeta, processed: Path, model: ModelConfig
    ) -> None:
        if model.ngram_buckets:
            fit_text_ngrams(net, processed)
        if model.embeddings_path is None:
            return
        import torch
        from tokenizers import Tokenizer

        from seqops.data.text import load_word_vectors

        vocab = Tokenizer.from_file(str(processed / meta.tokenizer)).get_vocab()
        weights, _ = load_word_vectors(model.embeddings_path, vocab, model.embedding_dim)
        embedding = net.embedding
        assert isinstance(embedding, torch.nn.Embedding)
        embedding.weight.data.copy_(torch.from_numpy(weights))
        embedding.weight.requires_grad_(not model.freeze_embeddings)


#: Fitted n-gram paths by (split files' identity, path shape): the trials of a tuning run in
#: one process build their networks from the same splits, and a fit takes seconds to a minute.
_FITTED: dict[tuple[Any, ...], tuple[dict[str, Any], float]] = {}


def fit_text_ngrams(net: nn.Module, processed: Path) -> None:
    """Fit a text network's n-gram path (`seqops.model.ngrams`) on the prepared training
    split, its penalty chosen on the validation split (once per process for the same splits)."""
    import numpy as np

    from seqops.data.sequences import SequenceSet
    from seqops.layout import split_file
    from seqops.model.ngrams import NgramPath, fit_ngram_path

    ngrams = getattr(net, "ngrams", None)
    if not isinstance(ngrams, NgramPath):
        raise ValueError("model.ngram_buckets is set but the network has no n-gram path")
    files = [processed / split_file(split) for split in ("train", "val")]
    key = (
        *((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files),
        ngrams.unigrams.weight.shape,
        ngrams.buckets,
    )
    if key not in _FITTED:
        train, val = (SequenceSet.load(f) for f in files)
        c = fit_ngram_path(
            ngrams, train.sequences, np.asarray(train.labels), val.sequences, np.asarray(val.labels)
        )
        _FITTED[key] = ({k: v.clone() for k, v in ngrams.state_dict().items()}, c)
        print(f"train: n-gram path fitted by logistic regression (C={c:g}, validation log-loss)")
    ngrams.load_state_dict(_FITTED[key][0])
