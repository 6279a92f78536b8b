"""`SequenceClassifier`: SequenceNet as a scikit-learn estimator, for raw text or float sequences.

    from sklearn.pipeline import Pipeline
    from sklearn.model_selection import GridSearchCV
    from seqops.sklearn import SequenceClassifier

    search = GridSearchCV(SequenceClassifier(max_epochs=5), {"hidden_size": [32, 64]}, cv=3)
    search.fit(texts, labels)                 # texts: a list / array / Series of str
    search.predict(["a fine film"])

`X` is one of: strings (raw text: a tokenizer is fitted on `X` with the `tokenizers` library,
token ids feed an embedding); a 2-D float array `(n, T)` (univariate sequences of length `T`);
a 3-D float array `(n, T, F)`; or a list of `(T_i, F)` float arrays of varying length. Float
input is standardised per channel with the training data's mean and std. Training is a plain
seeded AdamW loop over the same padding-invariant network as the pipeline (no Lightning, so a
grid search stays fast); `random_state` makes `fit` repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from seqops.config import Cell, ModelConfig, Pooling, TokenizerConfig, TrainConfig
from seqops.data.batches import pad_batch
from seqops.data.scaling import ChannelScaler
from seqops.data.text import TextEncoder, text_cell, tokenizer_from_config
from seqops.errors import DataError
from seqops.model.network import SequenceNet, architecture

#: Defaults are the pipeline's (`params.yaml`'s fields), declared once in `seqops.config`.
_MODEL, _TRAIN, _TOKENIZER = ModelConfig(), TrainConfig(), TokenizerConfig()


def _is_text(X: Any) -> bool:
    """Strings in a list, tuple, pandas Series or 1-D object / str array."""
    if isinstance(X, list | tuple):
        return len(X) > 0 and isinstance(X[0], str)
    if hasattr(X, "iloc") and getattr(X, "ndim", 0) == 1:
        return len(X) > 0 and isinstance(X.iloc[0], str)
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "OUS":
        return len(X) > 0 and isinstance(X[0], str)
    return False


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A recurrent classifier over raw text or variable-length float sequences.

    Parameters mirror `params.yaml`, with its defaults: `model.*` (cell, hidden_size,
    num_layers, bidirectional, dropout, pooling, embedding_dim), `data.tokenizer.*`
    (vocab_size, min_frequency, max_len, lowercase) and `train.*` (max_epochs, batch_size, lr,
    weight_decay). `fit` validates them with the same config models, so a bad value is the
    same error as in `params.yaml`.
    """

    def __init__(
        self,
        *,
        cell: Cell = _MODEL.cell,
        hidden_size: int = _MODEL.hidden_size,
        num_layers: int = _MODEL.num_layers,
        bidirectional: bool = _MODEL.bidirectional,
        dropout: float = _MODEL.dropout,
        pooling: Pooling = _MODEL.pooling,
        embedding_dim: int = _MODEL.embedding_dim,
        vocab_size: int = _TOKENIZER.vocab_size,
        min_frequency: int = _TOKENIZER.min_frequency,
        max_len: int = _TOKENIZER.max_len,
        lowercase: bool = _TOKENIZER.lowercase,
        max_epochs: int = _TRAIN.max_epochs,
        batch_size: int = _TRAIN.batch_size,
        lr: float = _TRAIN.lr,
        weight_decay: float = _TRAIN.weight_decay,
        random_state: int = 0,
    ) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.pooling = pooling
        self.embedding_dim = embedding_dim
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.max_len = max_len
        self.lowercase = lowercase
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state

    # -- input handling ---------------------------------------------------------------------

    def _sequences(self, X: Any, *, fitting: bool) -> list[np.ndarray]:
        """Model inputs: int64 token ids `(T,)` per text, or standardised `(T, F)` float32."""
        if fitting:
            self.text_ = _is_text(X)
        if self.text_:
            try:
                return self._token_ids(list(X), fitting)
            except DataError as exc:  # scikit-learn's convention for bad input
                raise ValueError(str(exc)) from None
        return self._float_sequences(X, fitting)

    def _configs(self) -> tuple[ModelConfig, TrainConfig, TokenizerConfig]:
        """The estimator's params as the pipeline's config sections (validated the same way)."""
        model = ModelConfig(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            pooling=self.pooling,
            embedding_dim=self.embedding_dim,
        )
        train = TrainConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
        )
        tokenizer = TokenizerConfig(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            max_len=self.max_len,
            lowercase=self.lowercase,
        )
        return model, train, tokenizer

    def _token_ids(self, X: list[Any], fitting: bool) -> list[np.ndarray]:
        texts = [text_cell(v, "X", "text", i) for i, v in enumerate(X)]
        if fitting:
            self.encoder_ = TextEncoder(tokenizer_from_config(texts, self._configs()[2]))
        return self.encoder_.encode(texts, where="X")

    def _float_sequences(self, X: Any, fitting: bool) -> list[np.ndarray]:
        if isinstance(X, list | tuple) and len(X) > 0 and np.ndim(X[0]) == 2:
            raw = [np.asarray(s, dtype=np.float64) for s in X]  # ragged (T_i, F)
            if any(not np.isfinite(s).all() for s in raw):
                raise ValueError("Input X contains NaN or infinity.")
        else:
            array = validate_data(
                self, X, reset=fitting, allow_nd=True, ensure_min_features=1, dtype=np.float64
            )
            if array.ndim not in (2, 3):
                raise ValueError(f"expected 2-D (n, T) or 3-D (n, T, F) input, got {array.ndim}-D")
            raw = list(array[:, :, None] if array.ndim == 2 else array)
        if fitting:
            self.scaler_ = ChannelScaler.fit(raw)
        elif raw and raw[0].shape[1] != len(self.scaler_.mean):
            raise ValueError(
                f"X has {raw[0].shape[1]} features per step; the model was fitted on "
                f"{len(self.scaler_.mean)}"
            )
        return self.scaler_.transform(raw)

    # -- estimator API ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> SequenceClassifier:
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            import warnings

            from sklearn.exceptions import DataConversionWarning

            warnings.warn(
                "A column-vector y was passed when a 1d array was expected.",
                DataConversionWarning,
                stacklevel=2,
            )
            y = y.ravel()
        check_classification_targets(y)
        model, train, _ = self._configs()
        sequences = self._sequences(X, fitting=True)
        if len(sequences) != len(y):
            raise ValueError(f"X has {len(sequences)} samples but y has {len(y)}")
        self.classes_, target = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"Classifier can't train when only one class is present: {self.classes_.tolist()}"
            )
        torch.manual_seed(self.random_state)
        text = {"vocab_size": self.encoder_.vocab_size} if self.text_ else {}
        self.net_ = SequenceNet(
            0 if self.text_ else sequences[0].shape[1],
            len(self.classes_),
            **architecture(model, max(len(s) for s in sequences)),  # type: ignore[arg-type]
            embedding_dim=model.embedding_dim,
            **text,  # type: ignore[arg-type]
        )
        self._train(sequences, torch.as_tensor(target, dtype=torch.int64), train)
        return self

    def _train(self, sequences: list[np.ndarray], target: torch.Tensor, cfg: TrainConfig) -> None:
        net = self.net_.train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(self.random_state)
        for _ in range(cfg.max_epochs):
            order = torch.randperm(len(sequences), generator=generator).tolist()
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                x, lengths = pad_batch([sequences[i] for i in batch])
                optimizer.zero_grad()
                loss = loss_fn(net(x, lengths), target[batch])
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
        net.eval()

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        sequences = self._sequences(X, fitting=False)
        net = self.net_.eval()
        chunks = [
            torch.softmax(net(*pad_batch(sequences[i : i + 256])), dim=-1).numpy()
            for i in range(0, len(sequences), 256)
        ]
        return np.concatenate(chunks).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


__all__: Sequence[str] = ["SequenceClassifier"]
