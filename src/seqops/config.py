"""Typed view of `params.yaml`: the only module that reads YAML.

Every section of `params.yaml` is a pydantic model with extra keys forbidden, so a typo
(`model.hiden_size`), a wrong type or an out-of-range value stops the run before any work,
naming the key path, the bad value and what was expected:

    from seqops.config import load_config
    cfg = load_config("params.yaml")             # raises ConfigError on bad input
    cfg = load_config("params.yaml", overrides={"train.lr": 1e-3})

Defaults live on the fields below and nowhere else; the field docstrings document them.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from seqops import credentials
from seqops.errors import ConfigError, clip, quote

Cell = Literal["lstm", "gru", "rnn", "transformer"]
Pooling = Literal["last", "mean", "max", "attention"]
#: The task families; each is one module of `seqops.tasks` (see docs/architecture.md).
TaskName = Literal[
    "sequence_classification",
    "text_classification",
    "forecasting",
    "sequence_regression",
    "sequence_labeling",
    "language_modeling",
]

#: Upper bounds of the values that size memory or threads, checked before a stage deletes its
#: previous outputs: steps per sequence or window (`export.max_length`, `tokenizer.max_len`,
#: `forecast.lookback`, ...), examples per batch, vocabulary entries, threads per process.
MAX_STEPS = 1_000_000
MAX_BATCH = 65_536
MAX_VOCAB = 5_000_000
MAX_THREADS = 1024
MAX_EXAMPLES = 100_000_000
MAX_CALLS = 10_000_000
#: What MLflow accepts as a registered model name that also reads safely in `models:/` URIs
#: and registry filter strings; an experiment name as MLflow allows it (1-500 characters),
#: printable and without blank ends.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_EXPERIMENT_NAME = 500

#: Metrics to minimise; every other name in the vocabulary (docs/architecture.md) is maximised.
_LOWER_IS_BETTER = ("loss", "rmse", "mae", "smape", "mase", "ece", "bits_per_char", "perplexity")


def metric_direction(metric: str) -> Literal["minimize", "maximize"]:
    """Whether `metric` (e.g. `val/loss`, `val/accuracy`) improves downwards or upwards."""
    return "minimize" if metric.rsplit("/", 1)[-1] in _LOWER_IS_BETTER else "maximize"


#: A path param: YAML gives text, so this one field type is not strict.
PathParam = Annotated[Path, Strict(False)]


class _Section(BaseModel):
    # strict: `true` is not the integer 1, `1.5` not an integer, `"1"` not a number (an int is
    # still a float: YAML writes `lr: 1`); allow_inf_nan: `.inf` and `.nan` are refused.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False
    )


class TokenizerConfig(_Section):
    """The text tokenizer (`tokenizers` library), fitted on the training split only."""

    kind: Literal["word", "wordpiece"] = "word"
    """Word-level vocabulary, or WordPiece sub-words (fewer unknown tokens on new text)."""
    normalization: Literal["nfkc", "nfc", "nfd", "nfkd", "none"] = "nfkc"
    """Unicode normalisation applied before splitting."""
    lowercase: bool = True
    """Lower-case text before splitting."""
    vocab_size: int = Field(20000, ge=3, le=MAX_VOCAB)
    """Largest vocabulary, special tokens `[PAD]` (id 0) and `[UNK]` (id 1) included."""
    min_frequency: int = Field(1, ge=1)
    """A token seen fewer times in the training split becomes `[UNK]`."""
    max_len: int = Field(128, ge=1, le=MAX_STEPS)
    """Texts are truncated to this many tokens, in training and at prediction alike."""


class LabelingConfig(_Section):
    """Sequence labeling of tokens only: how each token of a CoNLL sentence becomes model input.

    Both vocabularies are built from the training split only; a token is one word id plus the
    ids of its first `max_word_length` characters, packed into one row of the `tokens` input
    (docs/tasks/sequence_labeling.md)."""

    lowercase: bool = True
    """Look words up lower-cased (the character ids keep the case, so capitalisation still
    reaches the model through them)."""
    min_frequency: int = Field(2, ge=1)
    """A word seen fewer times in the training split is `[UNK]` (id 1): words seen once then
    train the `[UNK]` vector that unseen test words get."""
    max_word_length: int = Field(20, ge=1, le=256)
    """Characters of each word the character features read; longer words are cut to their
    first `max_word_length` characters, in training and at prediction alike."""


class ForecastConfig(_Section):
    """Forecasting only: the series, the windows the model reads and writes, the splits.

    The split is chronological: the test block is the last `horizon + test_windows - 1`
    steps, validation the `data.val_fraction` share of the steps before it, train the rest.
    Scaling is fitted on the training part only, and no training window reads or predicts a
    step past it.
    """

    target_columns: list[str] | None = Field(None, min_length=1)
    """Columns to forecast; null = every value column (all but the time column)."""
    lookback: int = Field(36, ge=2, le=MAX_STEPS)
    """Past steps the model reads (after differencing) to make one forecast."""
    horizon: int = Field(12, ge=1, le=MAX_STEPS)
    """Steps forecast at once (direct multi-step: one output per step)."""
    differencing: Literal["none", "first", "seasonal"] = "none"
    """Model differences instead of levels: `first` (y[t] - y[t-1]) or `seasonal`
    (y[t] - y[t-season], the residual of the seasonal-naive forecast); forecasts are
    integrated back to original units."""
    transform: Literal["none", "log"] = "none"
    """`log`: model the targets' natural logarithm (every target value must be positive; with
    differencing, the model reads and writes growth rates); forecasts and intervals come back
    in the series' units. `none`: their values."""
    season_length: int | None = Field(None, ge=1)
    """Steps per season (MASE scale, seasonal naive, seasonal differencing); null = from the
    frequency (monthly 12, quarterly 4, weekly 52, daily 7, hourly 24); 1 = no seasonality
    (the naive forecast repeats the last value)."""
    freq: str | None = None
    """pandas frequency of the time column (`MS`, `D`, ...); null = inferred. Integer time
    columns count steps."""
    test_windows: int = Field(1, ge=1)
    """Forecast origins in the test block (rolling origin, one step apart); 1 = the last
    `horizon` steps."""
    gaps: Literal["error", "interpolate"] = "error"
    """A missing step or value: stop naming it, or fill it by linear interpolation in time
    (reported in `reports/data.json`)."""
    interval_level: float = 0.9
    """Nominal coverage of the forecast intervals, strictly between 0 and 1: split-conformal,
    per step ahead, calibrated on the validation windows at evaluate (no retraining; the
    point forecast is unchanged). Evaluate reports their test coverage, width and interval
    score; the bundle carries the half-widths, so served forecasts come with bounds."""
    interval_decays: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field([1.0], min_length=1)
    """Candidate weights of a validation window per window of age in the intervals'
    calibration (the latest window weighs 1, the one before `decay`, then `decay**2`...):
    below 1, recent windows count more (non-exchangeable conformal, for errors that drift);
    1, every window alike (exchangeable split conformal). Evaluate chooses among them on
    validation alone: each is calibrated on the earlier half of the validation windows and
    scored on the later half (`interval_check` in reports/metrics.json), and the lowest
    interval score wins (a tie: the larger decay)."""

    @field_validator("interval_level")
    @classmethod
    def _a_level(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"data.forecast.interval_level = {quote(value)}: expected a coverage level "
                "strictly between 0 and 1 (0.9 for 90 % intervals)"
            )
        return value


class DataConfig(_Section):
    """Where sequences come from and how they are split."""

    task: TaskName = "sequence_classification"
    """Task family: float sequences to a class, raw text (`text_classification`), series
    (`forecasting`: see `data.forecast`), or float sequences to one number
    (`sequence_regression`)."""
    dataset: str | None = "JapaneseVowels"
    """A UCR/UEA dataset bundled in sktime's wheel (official train/test split kept; `Tecator`
    or `Covid3Month` for regression); for forecasting, a bundled series: `co2` or `airline`;
    for sequence labeling, the per-step labelled series `basic_motions_segments`."""
    path: PathParam | None = None
    """A user file: long format (CSV, TSV or Parquet) for sequences; for text, CSV, TSV,
    Parquet or `<label> <text>` lines (any other suffix); for sequence labeling, a long-format
    table with one label per step (`.csv`, `.tsv`, `.parquet`: numeric series) or else the
    CoNLL training file (`token<TAB>tag` lines, BIO or BIOES). Set `dataset: null` to use it."""
    val_path: PathParam | None = None
    """Text only: a validation file in the same format; null carves `val_fraction` from `path`.
    Sequence labeling: the CoNLL validation file (required)."""
    test_path: PathParam | None = None
    """Text only: a test file in the same format; null carves `test_fraction` from `path`.
    Sequence labeling: the CoNLL test file (required)."""
    text_column: str = "text"
    """Text only: column holding the raw text (tables; `<label> <text>` lines need none)."""
    tokenizer: TokenizerConfig = TokenizerConfig()
    """Text only: how raw text becomes token ids."""
    id_column: str = "id"
    """Column naming the sequence each row belongs to (long format)."""
    time_column: str = "time"
    """Column ordering the rows of one sequence (long format)."""
    time_format: str | None = Field(None, min_length=2, max_length=64)
    """strftime format of a text time column (`%d/%m/%Y`, `%Y-%m-%dT%H:%M%z`); null = read
    each row as pandas does, refusing dates that read day-first and month-first alike
    (`03/04/2020`). Requests to a served model are read without it (use ISO 8601 or numbers)."""
    label_column: str = "label"
    """Column with the class (or, for regression, the number) of the sequence; must be
    constant within a sequence. Sequence labeling of series: the label of each step."""
    feature_columns: list[str] | None = Field(None, min_length=1)
    """Feature columns; `null` takes every column except id, time and label (an empty list
    is refused, not read as "all")."""
    val_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    """Stratified share of the training split held out for validation (early stopping);
    sequence labeling of series: a share of whole training series."""
    test_fraction: float = Field(0.25, gt=0.0, lt=0.5)
    """Stratified share held out for test, for user files only (bundled sets keep theirs);
    sequence labeling of series: a share of whole series."""
    forecast: ForecastConfig = ForecastConfig()
    """Forecasting only: windows, differencing, chronological splits, gaps."""
    labeling: LabelingConfig = LabelingConfig()
    """Sequence labeling only: word and character vocabularies of CoNLL tokens."""
    val_documents: list[str] | None = Field(None, min_length=1)
    """Language modeling only: the validation documents by name (a `.txt` file's stem in the
    `data.path` folder); null draws `val_fraction` of the documents (seeded)."""
    test_documents: list[str] | None = Field(None, min_length=1)
    """Language modeling only: the test documents by name; null draws `test_fraction` of the
    documents (seeded)."""
    units: Literal["char", "word"] = "char"
    """Language modeling only: the tokens modelled, characters (test metric bits per char) or
    words and punctuation marks (test metric perplexity)."""
    vocab_size: int | None = Field(None, ge=3, le=MAX_VOCAB)
    """Language modeling of words only: the largest vocabulary, `[PAD]` and `[UNK]` included
    (the most frequent training words; the rest read as `[UNK]`); null keeps every word.
    Characters keep every training character."""
    block_tokens: int = Field(256, ge=2, le=MAX_STEPS)
    """Language modeling only: tokens per block. Each document is cut into blocks of this many
    tokens: the examples export and the latency benchmark run, the units of the paired tests
    (model vs baseline per test block, candidate vs champion per served block)."""

    @field_validator("time_format")
    @classmethod
    def _strftime(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from datetime import UTC, datetime

        if "%" not in value:
            raise ValueError(f"data.time_format = {quote(value)}: holds no % directive")
        sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
        try:
            datetime.strptime(sample.strftime(value), value)
        except ValueError:
            raise ValueError(
                f"data.time_format = {quote(value)}: not a strftime format that reads back what "
                "it writes (e.g. '%d/%m/%Y', '%m/%d/%Y %H:%M', '%Y-%m-%dT%H:%M:%S%z')"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        from seqops.tasks import get_task

        if (self.dataset is None) == (self.path is None):
            raise ValueError("set exactly one of data.dataset (bundled) and data.path (your file)")
        task = get_task(self.task)
        for key in _TASK_OWNED_DATA:
            value, default = getattr(self, key), type(self).model_fields[key].default
            if value != default and f"data.{key}" not in task.reads:
                raise ValueError(
                    f"data.{key} = {quote(value)} is not read by data.task = {self.task!r}: "
                    "leave it out (it is a language_modeling key)"
                )
        task.check_data(self)
        return self


#: `data` keys only the tasks listing them in `Task.reads` read: any other task refuses a
#: value other than the default, so a misplaced key is not silently ignored.
_TASK_OWNED_DATA = ("val_documents", "test_documents", "units", "vocab_size", "block_tokens")


class ModelConfig(_Section):
    """SequenceNet architecture (docs/architecture.md)."""

    cell: Cell = "lstm"
    """Recurrent cell, or `transformer`: pre-norm transformer encoder layers (width
    `hidden_size`, `heads` heads, sinusoidal positions; `seqops.model.transformer`)."""
    hidden_size: int = Field(64, ge=1, le=4096)
    """Units per direction and layer (a transformer's model width)."""
    num_layers: int = Field(2, ge=1, le=8)
    """Stacked recurrent (or transformer) layers."""
    heads: int = Field(4, ge=1, le=64)
    """`cell: transformer` only: attention heads; `hidden_size` must be divisible by it."""
    bidirectional: bool = True
    """Add a backward direction that starts at each sequence's last real step. A transformer
    has no directions: `true` lets every step attend to the whole sequence, `false` makes the
    attention causal (step t reads steps 0..t only, as a language model needs)."""
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    """Dropout between recurrent layers and before the head."""
    recurrent_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Weight-drop on the hidden-to-hidden weights in training (DropConnect, one mask per
    batch, AWD-LSTM); the exported model is the plain cell. 0 = off; refused with a
    transformer (no hidden-to-hidden weights)."""
    locked_dropout: bool = False
    """`dropout` on the cells' inputs as variational (locked) dropout: one mask per sequence
    shared by all its steps, instead of a fresh mask per step. Recurrent cells only: refused
    with a transformer."""
    pooling: Pooling = "mean"
    """How per-step states become one vector: last real step, masked mean/max, attention."""
    encoder: Literal["auto", "linear", "conv"] = "auto"
    """Float inputs: how each step enters the recurrent cell. `linear`: one dense layer per
    step. `conv`: a strided Conv1d over time (`encoder_kernel`, `encoder_stride`) that
    shortens a sequence to ceil(T / stride) steps, for long series. `auto`: `conv` when the
    longest training sequence has at least `conv_from_length` steps, else `linear`."""
    conv_from_length: int = Field(100, ge=1)
    """`encoder: auto` only: the training length from which the conv encoder is used."""
    encoder_kernel: int = Field(8, ge=1, le=512)
    """`encoder: conv` only: steps each output step reads."""
    encoder_stride: int = Field(4, ge=1, le=512)
    """`encoder: conv` only: input steps per output step (at most `encoder_kernel`)."""
    encoder_layers: int = Field(1, ge=1, le=8)
    """`encoder: conv` only: convolutions, the strided one and `encoder_layers - 1` more of
    stride 1 on top."""
    encoder_norm: bool = True
    """`encoder: conv` only: batch normalisation after each convolution (before its ReLU), as
    in the fully convolutional time-series classifiers (Wang et al. 2017). In eval it is a
    per-channel scale and shift (the exported graph has no batch dependence); in training
    its statistics also count the zeroed padding of shorter sequences in a batch. Chosen on
    validation splits carved from the training data (benchmarks/small_data.py)."""
    embedding_dim: int = Field(128, ge=1, le=4096)
    """Text only: token embedding size (must match the vectors of `embeddings_path`)."""
    embeddings_path: PathParam | None = None
    """Text only: pretrained word vectors, a local word2vec / GloVe text file; null = random."""
    freeze_embeddings: bool = False
    """Text only: keep the pretrained vectors fixed instead of fine-tuning them."""
    crf: bool = True
    """Sequence labeling only: a linear-chain CRF over the per-step tag scores (trained by
    its likelihood, decoded by Viterbi) instead of an independent argmax per step."""
    char_features: bool = True
    """Sequence labeling of text only: a character CNN over each word's characters,
    concatenated to its word embedding (prefixes, suffixes and capitalisation of words the
    vocabulary lacks). Series have no characters: ignored."""
    char_filters: int = Field(30, ge=1, le=1024)
    """Sequence labeling of text, with `char_features`: the character CNN's filters, the
    width of each word's character vector."""
    word_shape: bool = False
    """Sequence labeling of text only: eight 0/1 orthographic features of each word (capitalised,
    all capitals, inner capital, digits, `@` mention, `#` hashtag, no letter or digit; see
    `seqops.model.network.WordShape`), read from its characters and concatenated to its
    embedding: the casing that `data.labeling.lowercase` drops, given to the tagger directly."""
    word_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Sequence labeling of text only: in training, each word is read as `[UNK]` with this
    probability (its characters still are read), so the vector unseen test words get is
    trained; with it, `data.labeling.min_frequency: 1` can keep every training word."""
    kernel_features: int = Field(0, ge=0, le=100_000)
    """Float sequences, one output per sequence (classification, regression): about this many
    MiniRocket-style random convolutional kernel features of the raw inputs beside the
    recurrent path, with a ridge head fitted in closed form on the training split before
    training and then frozen; the recurrent path learns what the kernel model misses
    (`seqops.model.kernels`). 0 = off; otherwise at least 84 (one per kernel)."""
    recurrent: bool = True
    """With `kernel_features`: false makes the kernel path the whole model (its ridge head and
    a trained scale; the recurrent layers are neither trained nor exported). Where 20-200
    training sequences overfit the recurrent path it can only lose accuracy the kernel model
    had (docs/decisions.md); `tune.choose` tries it by cross-validation for classification.
    The kept model's ridge is refit on train + val after training (only the scale needed
    validation), and the evaluate stage's baseline is fitted on the same splits."""
    ngram_buckets: int = Field(0, ge=0, le=1 << 22)
    """Text classification only: a linear bag-of-n-grams path beside the recurrent one, its
    unigram and hashed-bigram weights (bigrams hashed into this many buckets) fitted by logistic
    regression on the training split before training and then frozen; the recurrent path
    learns what the linear model misses (`seqops.model.ngrams`). 0 = off."""

    def input_encoder(self, longest: int) -> Literal["linear", "conv"]:
        """The encoder for training sequences of at most `longest` steps (resolves `auto`)."""
        if self.encoder != "auto":
            return self.encoder
        return "conv" if longest >= self.conv_from_length else "linear"

    @model_validator(mode="after")
    def _stride_within_kernel(self) -> ModelConfig:
        if self.encoder_stride > self.encoder_kernel:
            raise ValueError(
                f"model.encoder_stride = {self.encoder_stride} must not exceed "
                f"model.encoder_kernel = {self.encoder_kernel} (steps would be skipped)"
            )
        if 0 < self.kernel_features < 84:
            raise ValueError(
                f"model.kernel_features = {self.kernel_features}: 0 (off) or at least 84, one "
                "feature per kernel"
            )
        return self

    @model_validator(mode="after")
    def _transformer_fits(self) -> ModelConfig:
        if self.cell != "transformer":
            return self
        if self.hidden_size % self.heads:
            raise ValueError(
                f"model.hidden_size = {self.hidden_size} must be divisible by model.heads = "
                f"{self.heads} (cell: transformer splits the width among its heads)"
            )
        for key, off in (("recurrent_dropout", 0.0), ("locked_dropout", False)):
            if getattr(self, key) != off:
                raise ValueError(
                    f"model.{key} = {quote(getattr(self, key))} acts on recurrent cells and "
                    f"model.cell = 'transformer' has none: set it to {str(off).lower()}"
                )
        return self


#: `train` keys of training-time augmentation, whose defaults depend on the task.
AUGMENT_KEYS = ("augment_noise", "augment_scale", "augment_crop")


class TrainConfig(_Section):
    """Optimisation and the Lightning Trainer."""

    max_epochs: int = Field(60, ge=1)
    """Upper bound on epochs; early stopping usually ends sooner."""
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    """Sequences per batch."""
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    """AdamW peak learning rate."""
    weight_decay: float = Field(1e-4, ge=0.0)
    """AdamW decoupled weight decay."""
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    """Learning-rate schedule: cosine annealing over `max_epochs`, reduce-on-plateau, or none."""
    gradient_clip_val: float = Field(1.0, ge=0.0)
    """Gradient-norm clipping (0 disables)."""
    noise_std: float = Field(0.0, ge=0.0)
    """Std of Gaussian jitter added to (standardised) inputs during training only."""
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """Cross-entropy label smoothing."""
    monitor: str = "val/loss"
    """Validation metric for early stopping and the best checkpoint."""
    patience: int = Field(15, ge=1)
    """Epochs without improvement of `monitor` before stopping."""
    epoch_examples: int = Field(1024, ge=0, le=MAX_EXAMPLES)
    """Examples an epoch draws at least: a training split smaller than this is repeated
    (the copies shuffled together) until an epoch holds this many, so a tiny split still
    gets enough optimiser steps for `max_epochs`, `patience` and the tuner's `max_epochs` to
    mean what they mean on a large one (22 ArrowHead sequences in batches of 32 were one
    step an epoch). 0 = one pass per epoch."""
    augment_noise: float = Field(0.0, ge=0.0, le=10.0)
    """Training only, float features: Gaussian noise of this standard deviation added to
    every value of a training example each time it is drawn (inputs are standardised, so
    this is in units of each feature's spread). 0 = off; null or left out: the task's value
    (0.1 for sequence classification, else 0)."""
    augment_scale: float = Field(0.0, ge=0.0, le=1.0)
    """Training only, float features: each drawn example is multiplied, per feature, by a
    factor from N(1, this). 0 = off; null or left out: the task's value (0.1 for sequence
    classification, else 0)."""
    augment_crop: float = Field(0.0, ge=0.0, lt=1.0)
    """Training only: each drawn example keeps a random window of at least `1 - this` of its
    steps (window slicing). 0 = off; null or left out: the task's value (0)."""
    ensemble: int = Field(1, ge=1, le=16)
    """Models trained, from seeds `seed`, `seed + 1`, ... with the same params, each stopped
    on the validation split; the kept model averages them (class probabilities, or outputs)
    and is exported as one ONNX graph. 1 = one model. Training takes N times as long, and so
    does inference."""
    forecast_shrink: bool = True
    """Forecasting only: after training, weigh the network's forecast against the drift
    forecast of the (differenced) series by a weight in [0, 1] fitted on the validation
    windows (least squares on the level errors; `train/forecast_weight` in MLflow): 0 is
    seasonal naive with drift (`data.forecast.differencing: seasonal`), the last value with
    drift (`first`) or the training mean (`none`), 1 the network alone. It guards a series
    where the network overfits; false keeps the network alone."""
    refit_max_examples: int = Field(0, ge=0)
    """When train + val hold at most this many examples, train again from the same start on
    both for the epoch count the validation split chose, and keep that model: a tiny
    training set then loses nothing to validation. 0 = never; not with `scheduler: plateau`
    (it needs a validation metric)."""
    accelerator: Literal["cpu", "gpu", "cuda", "mps", "auto"] = "cpu"
    """Lightning accelerator; `seqops train` checks that it is present before it starts."""
    devices: Annotated[int, Field(ge=-1)] | Literal["auto"] = 1
    """Lightning devices: a count (-1 = all of the accelerator's), or `auto`."""
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "fsdp"] = "auto"
    """Lightning strategy."""
    deterministic: bool = True
    """Deterministic kernels: two runs from one commit give identical metrics on CPU."""
    bptt: int = Field(64, ge=1, le=MAX_STEPS)
    """Language modeling only: steps of truncated backpropagation through time. Each
    training row is a continuous stream cut into windows of this many tokens; the recurrent
    state is carried from one window to the next (detached: gradients stop at the window's
    edge) and zeroed where a document starts."""
    threads: int = Field(1, ge=0, le=MAX_THREADS)
    """PyTorch intra-op threads of each process that runs torch (train, each tuning worker, each
    DDP rank, evaluate, export); 0 keeps PyTorch's default (one per core), which oversubscribes
    a machine shared with other CPU-bound processes (benchmarks/scaling.py measures both)."""

    @model_validator(mode="after")
    def _trainer_options(self) -> TrainConfig:
        # Checked here, not by Lightning: train deletes the previous model before it starts.
        if not (self.monitor.startswith("val/") or self.monitor == "train/loss"):
            raise ValueError(
                f"train.monitor = {quote(self.monitor)}: expected a per-epoch val/ metric "
                "(or train/loss)"
            )
        if self.devices == 0:
            raise ValueError("train.devices = 0: expected a count >= 1, -1 (all) or 'auto'")
        return self

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        return "min" if metric_direction(self.monitor) == "minimize" else "max"


class IntRange(_Section):
    """Integers in `[low, high]` (Optuna `suggest_int`)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    """Sample uniformly in log space (for sizes spanning an order of magnitude)."""
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _valid_range(self) -> IntRange:
        _check_range(self.low, self.high, self.log, self.step != 1)
        return self


class FloatRange(_Section):
    """Floats in `[low, high]` (Optuna `suggest_float`)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    """Sample uniformly in log space (learning rates)."""
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _valid_range(self) -> FloatRange:
        _check_range(self.low, self.high, self.log, self.step is not None)
        return self


class Choice(_Section):
    """One of a list of values (Optuna `suggest_categorical`)."""

    type: Literal["categorical"]
    choices: list[bool | int | float | str] = Field(min_length=1)
    when: dict[str, dict[str, IntRange | FloatRange | Choice]] = Field(default_factory=dict)
    """Conditional dimensions: choice → the dimensions sampled only in trials that draw it,
    replacing the top-level ones of the same path there (`model.cell: {..., when:
    {transformer: {model.heads: ...}}}`). Other trials sample exactly as without it."""

    @model_validator(mode="after")
    def _distinct(self) -> Choice:
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise ValueError(f"choices {quote(self.choices)} repeat a value")
        for choice, dims in self.when.items():
            if choice not in self.choices:
                raise ValueError(f"when: {quote(choice)} is not one of {quote(self.choices)}")
            if any(isinstance(d, Choice) and d.when for d in dims.values()):
                raise ValueError(f"when.{clip(choice, 40)}: a conditional dimension cannot nest")
        return self


def _check_range(low: float, high: float, log: bool, stepped: bool) -> None:
    if not low < high:
        raise ValueError(f"low={low} must be below high={high}")
    if log and low <= 0:
        raise ValueError(f"log=true needs low > 0, got low={low}")
    if log and stepped:
        raise ValueError("log=true and a step cannot be combined")


SearchDim = Annotated[IntRange | FloatRange | Choice, Field(discriminator="type")]
Choice.model_rebuild()

#: The default search space: around the default model, so that a short search on
#: JapaneseVowels lands on a configuration at least as good as the defaults.
_DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "model.cell": {"type": "categorical", "choices": ["lstm", "gru"]},
    "model.hidden_size": {"type": "int", "low": 32, "high": 128, "log": True},
    "model.num_layers": {"type": "int", "low": 1, "high": 2},
    "model.bidirectional": {"type": "categorical", "choices": [True, False]},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "model.pooling": {"type": "categorical", "choices": ["last", "mean"]},
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
}


class TuneConfig(_Section):
    """Hyperparameter search (Optuna TPE + pruning) run by the tune stage."""

    enabled: bool = True
    """`false` skips the search: the stage writes the base params unchanged."""
    n_trials: int = Field(6, ge=1)
    """Finished (complete or pruned) trials the study should hold; a rerun only tops it up."""
    timeout_s: float | None = Field(None, gt=0)
    """Optional wall-clock budget per run of the stage (each worker stops starting trials)."""
    max_epochs: int | None = Field(10, ge=1)
    """Cap on `train.max_epochs` inside a trial (null: no cap); train later uses the full value."""
    workers: int = Field(2, ge=1, le=64)
    """Trials trained side by side, one process each with one torch thread (`seqops tune
    --workers N` overrides it). Trials run in rounds of this many: each round's params are
    sampled before it starts and its pruner compares with the trials of earlier rounds only,
    so a given worker count gives the same study every time; another count gives another
    (equally valid) study; not with `pruner: hyperband`, whose bracket views see round-mates.
    1: one trial after another in the stage's own process."""
    folds: int = Field(1, ge=1, le=10)
    """1: a trial trains on the training split and is scored on the validation split. k > 1
    (classification only): a trial trains k times, on stratified folds of train + val pooled,
    and is scored by the mean of the folds' best `metric` (k times the cost), for a
    validation split too small to rank trials (7 sequences of 36). The pruner watches the
    first fold. The train stage still trains once, on the original splits."""
    metric: str = "val/loss"
    """Per-epoch validation metric the pruner watches and the trial's best value optimises."""
    direction: Literal["minimize", "maximize"] | None = None
    """null: from the metric (loss minimised, accuracy maximised); a contradiction is rejected."""
    startup_trials: int = Field(5, ge=0)
    """Random trials before TPE starts modelling the space."""
    pruner: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    """Early stop of unpromising trials from their per-epoch `metric`."""
    pruner_startup_trials: int = Field(3, ge=0)
    """Median pruner: trials that run to the end before any pruning."""
    pruner_warmup_epochs: int = Field(4, ge=0)
    """Epochs a trial always runs (median warm-up; min resource of halving / hyperband)."""
    storage: str | None = None
    """null: a journal file `optuna/<study>.journal` at the project root (survives kill -9);
    a file path: that journal file; a URL (`postgresql://...`, `sqlite:///...`): an RDB that
    workers on several machines share. No password in it: PostgreSQL reads PGPASSWORD or
    ~/.pgpass, or use `storage_env`."""
    storage_env: str | None = None
    """Instead of `storage`: the name of an environment variable holding the whole storage URL
    (password included), read at run time and never stored or logged."""
    space: dict[str, SearchDim] = Field(
        default_factory=lambda: {k: dict(v) for k, v in _DEFAULT_SPACE.items()}  # type: ignore[arg-type]
    )
    """Dotted param path (`model.hidden_size`) -> range or choices; checked against the config."""
    choose: dict[str, list[bool | int | float | str]] = Field(default_factory=dict)
    """Before the search (classification only): dotted param path -> values, each trained with
    the base params on `choose_folds` stratified folds of train + val pooled; the value with
    the higher mean validation accuracy, then the lower mean validation loss (then the one
    listed first) is fixed for the search and written to `models/best_params.yaml`
    (`seqops.tuning.choice`). Each value costs `choose_folds` full trainings; a path is
    chosen here or searched in `space`, not both. Left out or null: the task's (`Task.choose`:
    `model.kernel_features` 0 or 10000 for sequence_classification, none elsewhere); `{}`:
    no choice."""
    choose_folds: int = Field(3, ge=2, le=10)
    """Folds each `choose` value trains on."""

    @field_validator("storage")
    @classmethod
    def _no_storage_password(cls, value: str | None) -> str | None:
        if value is not None and credentials.has_password(value):
            raise ValueError(
                f"holds a password, which would be stored in dvc.lock and MLflow: remove it "
                f"and {credentials.STORAGE_ADVICE}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TuneConfig:
        if self.storage is not None and self.storage_env is not None:
            raise ValueError("tune.storage and tune.storage_env are both set: keep one")
        if not self.metric.startswith("val/"):
            raise ValueError(f"tune.metric={quote(self.metric)}: must be a per-epoch val/ metric")
        if self.direction is not None and self.direction != metric_direction(self.metric):
            raise ValueError(
                f"tune.direction={self.direction!r} contradicts tune.metric={quote(self.metric)} "
                f"(expected {metric_direction(self.metric)!r}, or null)"
            )
        if self.enabled and not self.space:
            raise ValueError("tune.space is empty: add a range or set tune.enabled: false")
        return self

    @property
    def goal(self) -> Literal["minimize", "maximize"]:
        return self.direction or metric_direction(self.metric)


class ExportConfig(_Section):
    """ONNX export, its parity check against PyTorch, and int8 quantization
    (docs/architecture.md, "Exported model")."""

    opset: int = Field(17, ge=14, le=21)
    """ONNX opset of `models/model.onnx`."""
    parity_atol: float = Field(1e-5, gt=0.0)
    """Absolute part of the parity tolerance: ONNX Runtime's output may differ from
    PyTorch's by `parity_atol + parity_rtol * |PyTorch's|`, elementwise (numpy.allclose)."""
    parity_rtol: float = Field(1e-4, ge=0.0, lt=1.0)
    """Relative part of the parity tolerance: float32 kernels summing in another order
    differ in proportion to the output's size (on OSULeaf a logit differed by 2.5e-5, over
    an absolute 1e-5, with every decision the same), so large outputs get a proportional
    margin. Decisions (a classifier's argmax) must agree whatever the tolerance. 0 = the
    absolute part only."""
    parity_batch_sizes: list[Annotated[int, Field(le=MAX_BATCH)]] = Field(
        [1, 8, 64], min_length=1, max_length=16
    )
    """Batches of real test sequences checked for parity (batch 1 always matters)."""
    max_length: int = Field(512, ge=2, le=MAX_STEPS)
    """Longest sequence `seqops predict` and the server accept; longer ones are rejected
    (truncating would silently change the answer). Parity is also checked at this length.
    Forecasting models read the last `data.forecast.lookback` steps of any longer history."""
    quantize: bool = True
    """Also write `models/model.int8.onnx` (onnxruntime dynamic quantization; LSTM only)."""

    @model_validator(mode="after")
    def _positive_batches(self) -> ExportConfig:
        if any(b < 1 for b in self.parity_batch_sizes):
            raise ValueError(
                f"parity_batch_sizes must be >= 1, got {quote(self.parity_batch_sizes)}"
            )
        return self


class BenchmarkConfig(_Section):
    """Latency of PyTorch eager vs ONNX fp32 vs ONNX int8, each runtime in its own process."""

    n_calls: int = Field(1000, ge=100, le=MAX_CALLS)
    """Timed batch-1 calls per runtime (p99 needs at least a few hundred)."""
    warmup: int = Field(100, ge=0, le=MAX_CALLS)
    """Untimed calls first (allocator, caches, lazy initialisation)."""
    threads: int = Field(1, ge=1, le=MAX_THREADS)
    """Intra-op threads of every runtime (inter-op is 1, spinning off)."""
    throughput_batch: int = Field(64, ge=1, le=MAX_BATCH)
    """Batch size of the throughput measurement."""
    throughput_calls: int = Field(20, ge=1, le=MAX_CALLS)
    """Timed calls at `throughput_batch`."""


class ReleaseConfig(_Section):
    """The release gate and the MLflow Model Registry entry (docs/architecture.md)."""

    model_name: str = "seqops"
    """Registered model name; versions get aliases `candidate`, `champion`, `previous-champion`.
    Letters, digits, `_`, `.` and `-` (up to 128, starting with a letter or digit): it is part
    of `models:/NAME/N` URIs and registry queries, which `/`, `:`, `@` or quotes would break."""
    metric: str = "test/accuracy"
    """Task metric the quality check reads from `reports/metrics.json` (an error such as
    `test/rmse` for forecasting and regression); must be one the task reports."""
    min_metric: float = Field(0.95, ge=0.0, le=1.0)
    """Quality floor for `metric` on the test set (metrics where higher is better)."""
    max_metric: float | None = Field(None, gt=0.0)
    """Quality ceiling for a forecast error `metric` (test/rmse in the series' units, ...)."""
    max_p95_ms: float = Field(10.0, gt=0.0)
    """Latency budget: ONNX fp32 batch-1 p95, milliseconds."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance level of the paired regression test against the current champion."""
    baseline_alpha: float | None = Field(0.05, gt=0.0, lt=1.0)
    """Significance level of the check that the model is not significantly worse than its
    classical baseline(s) on the same test examples (the task's paired test: McNemar for
    classifiers, Diebold-Mariano for errors); null turns the check off."""
    interval_coverage_tolerance: float | None = Field(None, gt=0.0, lt=1.0)
    """Forecasting: the test coverage of the forecast intervals must lie within this distance
    of their nominal level (`data.forecast.interval_level`), e.g. 0.05 for 90 % ± 5 points;
    null (the default) leaves coverage out of the gate."""

    @field_validator("model_name")
    @classmethod
    def _registrable_name(cls, value: str) -> str:
        if not _MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"release.model_name = {quote(value)}: expected 1 to 128 letters, digits, '_', "
                "'.' or '-', starting with a letter or digit (it is part of models:/NAME/N URIs)"
            )
        return value

    @model_validator(mode="after")
    def _threshold_for_direction(self) -> ReleaseConfig:
        if not self.metric.startswith("test/"):
            raise ValueError(f"release.metric = {quote(self.metric)}: must be a test/ metric")
        if metric_direction(self.metric) == "minimize" and self.max_metric is None:
            raise ValueError(
                f"release.metric = {quote(self.metric)} is an error (lower is better): "
                "set release.max_metric, its ceiling"
            )
        return self


#: URI schemes of MLflow's tracking stores (a `+driver` suffix such as `postgresql+psycopg2`
#: is allowed).
_TRACKING_SCHEMES = (
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "file",
    "http",
    "https",
    "databricks",
)


class TrackingConfig(_Section):
    """MLflow. `MLFLOW_TRACKING_URI` in the environment wins over `uri`."""

    uri: str = "sqlite:///mlflow.db"
    """Tracking store: the embedded SQLite file at the repo root, or any server URI (no password
    in it: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD hold a server's credentials)."""
    experiment: str = "seqops"
    """Experiment that holds every run of this project (MLflow's rule: 1 to 500 characters; no
    control characters, no blank ends)."""

    @model_validator(mode="after")
    def _known_scheme(self) -> TrackingConfig:
        scheme = urlsplit(self.uri).scheme.split("+")[0]
        # No scheme (or a one-letter Windows drive) is a local folder: MLflow's file store.
        if len(scheme) > 1 and scheme not in _TRACKING_SCHEMES:
            raise ValueError(
                f"tracking.uri: scheme {quote(scheme)} is not a tracking store MLflow knows "
                f"(expected one of {', '.join(_TRACKING_SCHEMES)}, or a folder)"
            )
        if scheme in ("http", "https", "postgresql", "mysql", "mssql"):
            parts = urlsplit(self.uri)
            try:
                parts.port  # noqa: B018  # a port that is not a number raises here
            except ValueError:
                raise ValueError(
                    f"tracking.uri: the port of {quote(credentials.mask(self.uri))} is not a "
                    "number from 0 to 65535"
                ) from None
            if not parts.hostname:
                raise ValueError(
                    f"tracking.uri: {quote(credentials.mask(self.uri))} names no host "
                    f"(expected {scheme}://HOST[:PORT]/...)"
                )
        return self

    @field_validator("experiment")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not value.strip() or value != value.strip() or _CONTROL.search(value):
            raise ValueError(
                f"tracking.experiment = {quote(value)}: expected a name without blank ends or "
                "control characters"
            )
        if len(value) > _MAX_EXPERIMENT_NAME:
            raise ValueError(
                f"tracking.experiment: {len(value)} characters, more than MLflow's "
                f"{_MAX_EXPERIMENT_NAME}"
            )
        return value

    @field_validator("uri")
    @classmethod
    def _no_uri_password(cls, value: str) -> str:
        if credentials.has_password(value):
            raise ValueError(
                f"holds a password, which would be stored in dvc.lock and MLflow: remove it "
                f"and {credentials.TRACKING_ADVICE}"
            )
        return value


class Config(_Section):
    """The whole of `params.yaml`."""

    seed: int = Field(42, ge=0)
    """Seeds splitting, initialisation and shuffling."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    export: ExportConfig = ExportConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    release: ReleaseConfig = ReleaseConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _space_fits_config(self, info: ValidationInfo) -> Config:
        if info.context and not info.context.get(CHECK_SPACE, True):
            return self  # a trial's config: its base was checked, its values were sampled
        for path, dim in self.tune.space.items():
            _check_dim(self, path, dim)
            for choice, dims in (dim.when if isinstance(dim, Choice) else {}).items():
                _check_branch(self, path, choice, dims)
        for path, values in self.tune.choose.items():
            _check_chosen(self, path, values)
        return self

    @model_validator(mode="after")
    def _a_path_remains(self) -> Config:
        # Here, not in ModelConfig: `tune.choose` may list `model.recurrent: false` beside
        # `model.kernel_features: [0, ...]`, and a combination without a path is skipped there.
        if not self.model.recurrent and not self.model.kernel_features:
            raise ValueError(
                "model.recurrent = false leaves no path: it keeps the random-kernel path "
                "alone, so set model.kernel_features (at least 84) or recurrent to true"
            )
        return self

    @model_validator(mode="after")
    def _folds_fit_task(self) -> Config:
        from seqops.tasks import get_task

        task = get_task(self.data.task)
        if self.tune.folds > 1 and not task.stratified_folds:
            raise ValueError(
                f"tune.folds = {self.tune.folds} needs a classification task (stratified folds "
                f"of independent examples), not data.task = {self.data.task!r}: set it to 1"
            )
        if self.tune.enabled and self.tune.choose and not task.stratified_folds:
            raise ValueError(
                f"tune.choose cross-validates on stratified folds, which data.task = "
                f"{self.data.task!r} does not have: set tune.choose: {{}}"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """`train.augment_*` left out or null take the task's values (`Task.augment`), and
        `tune.choose` left out or null the task's choice (`Task.choose`)."""
        if not isinstance(raw, dict):
            return raw
        # A section given as an instance is already resolved.
        data, train, tune = (raw.get(k) or {} for k in ("data", "train", "tune"))
        if not isinstance(data, dict):
            return raw
        from seqops.tasks import TASKS

        task = TASKS.get(data.get("task", DataConfig().task))
        if task is None:
            return raw  # the field's own validation names the bad task
        missing = [k for k in AUGMENT_KEYS if isinstance(train, dict) and train.get(k) is None]
        if missing:
            values = task.augment or {}
            raw = {**raw, "train": {**train, **{k: values.get(k, 0.0) for k in missing}}}
        if isinstance(tune, dict) and tune.get("choose") is None:  # {}: no choice
            choose = {k: list(v) for k, v in task.choose.items()}
            raw = {**raw, "tune": {**tune, "choose": choose}}
        return raw

    @model_validator(mode="after")
    def _augment_fits_task(self) -> Config:
        from seqops.tasks import get_task

        used = [k for k in AUGMENT_KEYS if getattr(self.train, k)]
        if used and get_task(self.data.task).augment is None:
            raise ValueError(
                f"train.{used[0]} = {getattr(self.train, used[0])} does not fit data.task = "
                f"{self.data.task!r} (its labels would not survive noise, scaling or "
                f"cropping): set it to 0"
            )
        return self

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Config:
        from seqops.tasks import get_task

        task = get_task(self.data.task)
        for where, metric, allowed, loss_ok in (
            # train.monitor and tune.metric are read every epoch: only what is logged per epoch
            ("train.monitor", self.train.monitor, task.val_metrics, True),
            ("tune.metric", self.tune.metric, task.val_metrics, True),
            ("release.metric", self.release.metric, task.metrics, False),
        ):
            name = metric.rsplit("/", 1)[-1]
            if not (name in allowed or (loss_ok and name == "loss")):
                raise ValueError(
                    f"{where} = {quote(metric)} does not fit data.task = {self.data.task!r} "
                    f"(use one of {sorted(allowed)}{', or loss' if loss_ok else ''})"
                )
        return self

    @model_validator(mode="after")
    def _intervals_fit_task(self) -> Config:
        from seqops.tasks import get_task

        tolerance = self.release.interval_coverage_tolerance
        if tolerance is not None and not get_task(self.data.task).intervals:
            raise ValueError(
                f"release.interval_coverage_tolerance = {tolerance} does not fit data.task = "
                f"{self.data.task!r} (only forecasting reports interval coverage): set it to null"
            )
        return self

    def to_flat_dict(self, sections: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Dotted-name view (`model.hidden_size`), the names MLflow shows as params."""
        tree = self.model_dump(mode="json")
        if sections is not None:
            tree = {k: v for k, v in tree.items() if k in sections}
        return flatten(tree)


#: Sections whose leaves the tuner may search (the ones the train stage reads).
_SEARCHABLE = ("model", "train")


def _check_dim(
    cfg: Config, path: str, dim: IntRange | FloatRange | Choice, where: str | None = None
) -> None:
    """Reject a search dimension whose path is not a config leaf or whose values it refuses.

    Each endpoint / choice is validated by the section itself, so the field's own type and
    bounds decide (one source of truth): `model.hidden_size` up to 5000 fails like a typo would.
    """
    where = where or f"tune.space.{clip(path, 60)}"
    section, leaf, values = _dim_values(cfg, path, dim, where)
    branches = dim.when if isinstance(dim, Choice) else {}
    for value in values:
        if isinstance(value, str) and value in branches:
            continue  # checked with its branch's values (`_check_branch`)
        reasons = _refusal(section, {leaf: value})
        if reasons:
            raise ValueError(
                f"{where}: {quote(value)} is not a valid {clip(path, 60)} ({clip(reasons, 200)})"
            )


def _check_chosen(cfg: Config, path: str, values: list[bool | int | float | str]) -> None:
    """Reject a `tune.choose` path that is also searched, is not read by the task, or has
    fewer than two distinct values or a value its section refuses."""
    from seqops.tasks import get_task

    where = f"tune.choose.{clip(path, 60)}"
    if path in cfg.tune.space:
        raise ValueError(f"{where}: also searched in tune.space; keep it in one of the two")
    if len({repr(v) for v in values}) < 2:
        raise ValueError(f"{where}: {quote(values)}: list at least two distinct values")
    if not get_task(cfg.data.task).applicable({path: None}):
        raise ValueError(f"{where}: not read by data.task = {cfg.data.task!r}; leave it out")
    _check_dim(cfg, path, Choice(type="categorical", choices=values), where)


#: Most value combinations of one conditional branch checked together (beyond: each alone).
_MAX_COMBINATIONS = 1024


def _check_branch(
    cfg: Config, path: str, choice: str, dims: dict[str, IntRange | FloatRange | Choice]
) -> None:
    """Reject a conditional branch (`Choice.when`) whose dimensions, set together with the
    branch's own choice, make a config its sections refuse: every combination of their
    choices / endpoints is checked (`model.hidden_size` against `model.heads` for a
    transformer), or each value alone when there are more than `_MAX_COMBINATIONS`."""
    where = f"tune.space.{clip(path, 60)}.when.{clip(choice, 40)}"
    if path in dims:
        raise ValueError(f"{where}: a branch cannot search {clip(path, 60)} itself")
    options = [
        [(sub, value) for value in _dim_values(cfg, sub, dim, f"{where}.{clip(sub, 60)}")[2]]
        for sub, dim in dims.items()
    ]
    if math.prod(len(o) for o in options) <= _MAX_COMBINATIONS:
        rows: Any = itertools.product(*options)
    else:
        rows = ((pair,) for option in options for pair in option)
    for row in rows:
        chosen = dict([(path, choice), *row])
        for name in _SEARCHABLE:
            update = {p.partition(".")[2]: v for p, v in chosen.items() if p.startswith(name + ".")}
            reasons = _refusal(getattr(cfg, name), update)
            if reasons:
                shown = ", ".join(f"{clip(p, 60)} = {quote(v)}" for p, v in row)
                raise ValueError(f"{where}: {shown} is refused ({clip(reasons, 200)})")


def _refusal(section: _Section, update: dict[str, Any]) -> str:
    """Why `section` with `update` applied is invalid ('' when it is valid)."""
    try:
        type(section).model_validate({**section.model_dump(), **update})
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors())
    return ""


def _dim_values(
    cfg: Config, path: str, dim: IntRange | FloatRange | Choice, where: str
) -> tuple[_Section, str, list[Any]]:
    """The section `path` names, its leaf, and the values of `dim` to validate (choices, or a
    range's endpoints); refuses a path that is not a searchable leaf, or a range on a field
    that is not a number."""
    section_name, _, leaf = path.partition(".")
    if section_name not in _SEARCHABLE or "." in leaf:
        raise ValueError(f"{where}: not a searchable path (expected model.<key> or train.<key>)")
    section: _Section = getattr(cfg, section_name)
    field_info = type(section).model_fields.get(leaf)
    if field_info is None:
        known = ", ".join(f"{section_name}.{k}" for k in type(section).model_fields)
        raise ValueError(f"{where}: no such param (known: {known})")
    if isinstance(dim, Choice):
        values: list[Any] = list(dim.choices)
    else:
        if field_info.annotation not in (int, float) or (
            isinstance(dim, FloatRange) and field_info.annotation is not float
        ):
            raise ValueError(
                f"{where}: a {dim.type} range does not fit {clip(path, 60)} "
                f"({getattr(field_info.annotation, '__name__', field_info.annotation)}); "
                "use type: categorical"
            )
        values = [dim.low, dim.high]
    return section, leaf, values


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with dotted paths (`train.lr`) replaced; validation rejects typos."""
    tree = copy.deepcopy(raw)
    for path, value in overrides.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{clip(path)}: {quote(part)} is a value, not a section")
            node = child
        node[leaf] = value
    return tree


#: Bad keys one message lists before it says how many more there are.
_MAX_REASONS = 8


def _key_path(loc: tuple[Any, ...]) -> str:
    """A validation error's location as a dotted key path; a key the user wrote is cut to a
    readable length like any quoted value."""
    return ".".join(clip(str(p), 40) for p in loc) or "(top level)"


def _line_of(loc: tuple[Any, ...], lines: KeyLines) -> str:
    """`line N: ` for the deepest part of `loc` the file holds, else nothing."""
    for end in range(len(loc), 0, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return f"line {line}: "
    return ""


def _format_error(exc: ValidationError, source: str, lines: KeyLines) -> str:
    """One line: each bad key with its line, its value (cut to a bounded length) and what
    was expected, `; `-separated, at most `_MAX_REASONS` of them."""
    reasons = []
    errors = exc.errors()
    for err in errors[:_MAX_REASONS]:
        reasons.append(_line_of(err["loc"], lines) + _reason(err))
    if len(errors) > _MAX_REASONS:
        reasons.append(f"and {len(errors) - _MAX_REASONS} more")
    return f"invalid configuration in {source}: " + "; ".join(reasons)


def _reason(err: Any) -> str:
    """One validation error: the key path, the value cut to a bounded length, the problem."""
    path = _key_path(err["loc"])
    if err["type"] == "value_error":
        # Cross-field checks usually name their key path themselves.
        reason = clip(str(err["ctx"]["error"]), 300)
        named = not err["loc"] or reason.startswith(str(err["loc"][0]))
        return reason if named else f"{path}: {reason}"
    if err["type"] == "extra_forbidden":
        return f"{path} = {quote(err['input'])}: unknown key (typo?)"
    shown = err["input"]
    if isinstance(shown, str):  # a refused URI shows no password
        shown = credentials.mask(shown)
    return f"{path} = {quote(shown)}: {clip(err['msg'], 200)}"


#: Validation context key: False skips checking `tune.space` against the config (a trial's).
CHECK_SPACE = "check_space"


def parse_config(
    raw: dict[str, Any] | None,
    source: str = "params",
    lines: KeyLines | None = None,
    *,
    check_space: bool = True,
) -> Config:
    """Validate an already-loaded mapping; raises ConfigError naming each bad key (and its
    line, from `lines`). `check_space=False`: a trial's config, the base with sampled values,
    whose search space was checked against the base (a space with conditional dimensions
    need not fit every trial's values)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(f"{source}: expected a mapping at the top level, got {kind}")
    try:
        return Config.model_validate(raw, context={CHECK_SPACE: check_space})
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source, lines or {})) from None


def replaced(cfg: Config, values: dict[str, Any], source: str) -> Config:
    """`cfg` with dotted paths replaced by `values`, validated again (`source` names them in
    an error); its search space was checked against `cfg` (`check_space=False`)."""
    if not values:
        return cfg
    raw = apply_overrides(cfg.model_dump(mode="json"), values)
    return parse_config(raw, source, check_space=False)


#: Largest YAML file `read_yaml` parses by default (params files are a few kB).
MAX_YAML_BYTES = 1 << 20
#: Most nodes a document's aliases (`*name`) may stand for in all, counting each alias as the
#: whole subtree it repeats: a "billion laughs" document (ten aliases of ten aliases of ...)
#: is refused while it is read, before anything expands it.
MAX_ALIAS_NODES = 1000
#: Deepest nesting of sequences and mappings (the composer recurses once per level).
MAX_YAML_DEPTH = 64
#: Explicit tags a document may carry: the core schema's (`!!str 1`). Any other, `!!python/...`
#: and `!!binary` included, is refused.
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses, naming the line, what would make a document mean
    something other than what it shows: a key given twice (the last would silently win),
    aliases that expand beyond `MAX_ALIAS_NODES` nodes, nesting beyond `MAX_YAML_DEPTH`,
    and tags outside the core schema."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.expanded = 0
        self.depth = 0
        self.sizes: dict[int, int] = {}
        self.open: list[str | None] = []  # anchors of the nodes being composed

    def refuse(self, mark: Any, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}, line {mark.line + 1}: {problem}")

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open:
                raise self.refuse(
                    event.start_mark, "an alias refers to the mapping or list it is in"
                )
            if event.anchor in self.anchors:  # else PyYAML's own "undefined alias" error
                self.expanded += self._size(self.anchors[event.anchor])
                if self.expanded > MAX_ALIAS_NODES:
                    raise self.refuse(
                        event.start_mark,
                        f"aliases expand to more than {MAX_ALIAS_NODES} values (at "
                        f"*{clip(str(event.anchor), 40)}); write the values out",
                    )
            return super().compose_node(parent, index)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _CORE_TAGS:
            raise self.refuse(
                event.start_mark,
                f"tag {quote(tag)} is not allowed (plain YAML values only: no !!python, "
                "!!binary, !!set or custom tags)",
            )
        anchor = getattr(event, "anchor", None)
        self.depth += 1
        self.open.append(anchor)
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise self.refuse(event.start_mark, f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.open.pop()

    def _size(self, node: Any) -> int:
        """Nodes in `node`'s tree, each alias inside it counted as what it repeats."""
        found = self.sizes.get(id(node))
        if found is None:
            children = (
                [c for pair in node.value for c in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
                if isinstance(node, yaml.SequenceNode)
                else []
            )
            found = 1 + sum(self._size(child) for child in children)
            self.sizes[id(node)] = found
        return found

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                line = first.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error names it
            if line is not None:
                raise self.refuse(
                    key_node.start_mark,
                    f"key {quote(key)} appears twice in one mapping (first at line {line}); "
                    "keep one",
                )
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


#: Where each key of a YAML document is: key path (`("model", "cell")`) → line (from 1).
KeyLines = dict[tuple[str | int, ...], int]


def _key_lines(node: Any, path: tuple[str | int, ...], out: KeyLines) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out.setdefault((*path, key.value), key.start_mark.line + 1)
                _key_lines(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out.setdefault((*path, i), value.start_mark.line + 1)
            _key_lines(value, (*path, i), out)


def parse_yaml(text: str, source: str, lines: KeyLines | None = None) -> Any:
    """A YAML document as plain Python values, refused with one ConfigError naming `source`
    and the line when it repeats a key, expands aliases beyond a small limit, nests too
    deeply or carries a non-core tag (see `_StrictLoader`). `lines`, when given, receives
    the line of each key."""
    loader = _StrictLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if lines is not None:
            _key_lines(node, (), lines)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: not valid YAML ({clip(problem, 200)})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({clip(str(exc), 200)})") from None
    except ValueError as exc:  # a value PyYAML cannot build (an int past 4300 digits)
        raise ConfigError(f"{source}: a value cannot be read ({clip(str(exc), 200)})") from None
    finally:
        loader.dispose()


def read_yaml(
    path: str | Path, max_bytes: int | None = MAX_YAML_BYTES, lines: KeyLines | None = None
) -> Any:
    """A YAML file through `parse_yaml` (`lines` receives each key's line); one larger than
    `max_bytes` (None: any size) or not UTF-8 is refused before it is parsed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ConfigError(f"{path}: {size:,} bytes, more than a params file holds ({max_bytes:,})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, str(path), lines)


def load_config(
    path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None
) -> Config:
    """Read and validate `params.yaml`, with optional dotted-path overrides on top; an
    error names the line of each bad key the file holds (not of one an override set)."""
    lines: KeyLines = {}
    raw = read_yaml(path, lines=lines)
    if overrides:
        raw = apply_overrides(raw or {}, overrides)
        replaced = [tuple(p.split(".")) for p in overrides]
        lines = {k: v for k, v in lines.items() if not any(k[: len(r)] == r for r in replaced)}
    return parse_config(raw, str(path), lines)


def load_merged_config(params: str | Path, best_params: Path) -> Config:
    """params.yaml with the tuner's dotted-path overrides (`models/best_params.yaml`, if
    present) merged over it: the config the model was trained with."""
    overrides = read_yaml(best_params) if best_params.is_file() else None
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{best_params}: expected a mapping of dotted param paths")
    return load_config(params, overrides=overrides or None)
