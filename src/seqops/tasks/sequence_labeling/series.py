"""Sequence labeling on numeric series: one label per time step (activity segmentation, event
detection), with a dataset built from BasicMotions, a reader for a user's long-format file,
step and segment scores, and the classical sliding-window baseline.

    from seqops.tasks.sequence_labeling import series
    frames = series.basic_motions_segments(seed=0)      # {"train": frame, "test": frame}
    features = series.BASIC_MOTIONS_FEATURES
    train, test = (
        series.read_step_labels(frames[split], "id", "time", "label", features)
        for split in ("train", "test")
    )                                                   # [(values (T, F), labels (T,))]
    fit, val = series.hold_out(train, n_val=2, seed=0)  # whole series held out
    model = series.fit_window_baseline(fit, val, seed=0)
    predicted = series.predict(model, [values for values, _ in test])
    scores = series.score_series([labels for _, labels in test], predicted)
    scores.segment_f1, scores.step_accuracy, scores.per_label["walking"].overlap.f1

Data. A long-format table holds one row per step, `id, time, <features>, label`, where the
label may change from step to step (unlike `seqops.data.sources.load_long_file`, which wants
one label per sequence). `basic_motions_segments` builds such tables from sktime's bundled
BasicMotions, the way segmentation benchmarks are built from classification sets: whole
recordings concatenated into long series, each step labelled with its recording's activity.

Scores. Per-step accuracy, and segment-level precision, recall and F1 where a segment is a
maximal run of one label. `strict` counts a predicted segment as correct only with exactly a
gold segment's label, start and end; `overlap` when its intersection over union with a gold
segment of the same label is at least 0.5. The headline `segment_f1` is the overlap one: on
BasicMotions the baseline's strict F1 is near zero (0.00-0.08 on test for every window and
filter tried, seeds 0-3: a boundary one step off fails it, and the window features blur
every boundary), so it ranks nothing; strict is reported beside it. Counts are
`scoring.EntityCounts`, with conlleval's conventions (0 on a zero denominator).

Baseline. What a practitioner tries first for per-step labels: features of a centred window
around each step (mean, standard deviation, minimum, maximum and last minus first of each
channel), a gradient-boosted tree classifier per step, and a majority filter over the
predicted labels (the median filter for labels without an order). The window length and the
filter length are chosen on validation series; the classifier is fitted on train only.

Imports no torch, and sklearn (the baseline's classifier) and sktime (the dataset) only where
they are used, so reading and scoring stay light.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from seqops.data.sources import check_filled, check_one_kind, numeric_columns, time_order
from seqops.errors import DataError, quote
from seqops.tasks.sequence_labeling.scoring import EntityCounts

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

Steps = tuple[np.ndarray, np.ndarray]
"""One sequence: values `(T, F)` float32 and labels `(T,)` str, one per step."""

S = TypeVar("S")

#: sktime's names for BasicMotions' six channels, a smartwatch's 3D accelerometer and 3D
#: gyroscope (the data file does not say which dimension is which).
BASIC_MOTIONS_FEATURES = [f"dim_{i}" for i in range(6)]

#: Intersection over union at which a predicted segment matches a gold one (`overlap`).
MIN_IOU = 0.5

#: Centred window lengths (steps, odd) `fit_window_baseline` tries: BasicMotions is sampled
#: at 10 Hz, so 0.5-4 s of motion. On its validation series (seeds 0-3) step accuracy was
#: 0.92-0.99 from 5 to 21 steps, lower at 41 (0.86-0.96) and 61 (0.88-0.93), so the grid
#: stops at 41.
WINDOWS = (5, 11, 21, 41)

#: Majority-filter lengths (steps, odd; 1 leaves the predictions as they are) tried on the
#: predicted labels. On BasicMotions (recordings of 100 steps) validation segment F1 rose
#: from 0.33-0.69 unfiltered to 1.0 from 41 steps on for the chosen windows; step accuracy,
#: the tie-break, peaked at 41-81 and fell at 101 (seed 1: 0.983 at 61, 0.957 at 101), so
#: the grid stops at 81.
SMOOTHING = (1, 5, 11, 21, 41, 61, 81)


# --- data ---------------------------------------------------------------------------------


def basic_motions_segments(seed: int = 0, per_series: int = 5) -> dict[str, pd.DataFrame]:
    """BasicMotions as per-step labelled long series: `{"train": frame, "test": frame}`.

    Each split's 40 recordings (6 channels × 100 steps, 10 Hz; activities standing, walking,
    running, badminton) are drawn in an order a `numpy` Generator seeded with `seed` gives,
    `per_series` at a time, and concatenated into one long series: 40 / `per_series` series
    per split, every recording in exactly one. A series' next recording is the first left in
    the drawn order whose activity differs from the previous one, so the activity changes at
    each recording boundary while such a recording is left. Train series are built only from
    sktime's train recordings and test series only from its test recordings, so no recording
    is in two splits; hold validation series out of train with `hold_out`.

    A frame is in the long format of a user's file, ordered by id then time: `id` (`bm00`,
    `bm01`, ... numbered on across the splits: test ids follow train ids), `time` (0..N-1 per
    id), the features `BASIC_MOTIONS_FEATURES` (float64) and `label` (the activity)."""
    from sktime.datasets import load_basic_motions

    rng = np.random.default_rng(seed)
    frames: dict[str, pd.DataFrame] = {}
    n_series = 0
    for split in ("train", "test"):
        recordings, activities = load_basic_motions(
            split=split, return_X_y=True, return_type="numpy3D"
        )  # (40, 6, 100), (40,)
        if per_series < 1 or len(recordings) % per_series:
            raise ValueError(
                f"per_series must divide the {len(recordings)} recordings of a split; "
                f"got {per_series}"
            )
        activities = np.asarray(activities, dtype=str)
        parts = []
        for chosen in _draw_series(activities, per_series, rng):
            values = np.concatenate([recordings[i].T for i in chosen])  # (per_series * 100, 6)
            part = pd.DataFrame(values, columns=BASIC_MOTIONS_FEATURES)
            part.insert(0, "id", f"bm{n_series:02d}")
            part.insert(1, "time", np.arange(len(values)))
            part["label"] = np.repeat(activities[chosen], recordings.shape[2])
            parts.append(part)
            n_series += 1
        frames[split] = pd.concat(parts, ignore_index=True)
    return frames


def _draw_series(
    activities: np.ndarray, per_series: int, rng: np.random.Generator
) -> list[list[int]]:
    """Recording indices grouped into series of `per_series`, each recording once (see
    `basic_motions_segments`)."""
    left = [int(i) for i in rng.permutation(len(activities))]
    series = []
    while left:
        chosen: list[int] = []
        for _ in range(per_series):
            previous = activities[chosen[-1]] if chosen else None
            pick = next((i for i in left if activities[i] != previous), left[0])
            left.remove(pick)
            chosen.append(pick)
        series.append(chosen)
    return series


class StepSeries(NamedTuple):
    """One sequence of a long-format table as read: its id, its rows' time cells (as the
    table holds them), values `(T, F)` float32 and labels `(T,)` str, in time order."""

    id: object
    times: np.ndarray
    values: np.ndarray
    labels: np.ndarray


def read_step_labels(
    frame: pd.DataFrame,
    id_column: str,
    time_column: str,
    label_column: str,
    feature_columns: Sequence[str],
    *,
    where: str = "data",
    time_format: str | None = None,
) -> list[Steps]:
    """The sequences of a long-format table with one label per step, sorted by id and each
    by time: `(values (T, F) float32, labels (T,) str)` (`read_step_series` without the ids
    and times)."""
    return [
        (s.values, s.labels)
        for s in read_step_series(
            frame,
            id_column,
            time_column,
            label_column,
            feature_columns,
            where=where,
            time_format=time_format,
        )
    ]


def read_step_series(
    frame: pd.DataFrame,
    id_column: str,
    time_column: str,
    label_column: str,
    feature_columns: Sequence[str],
    *,
    where: str = "data",
    time_format: str | None = None,
) -> list[StepSeries]:
    """The sequences of a long-format table with one label per step, sorted by id and each
    by time (`time_format`: see `seqops.data.sources.time_order`).

    Labels are kept as text (`1` reads as "1"); encoding them is the task codec's job. Each
    bad input stops with one `DataError` that starts with `where` (the file) and names the
    column and row (positions counted from 0): a missing column, an empty id or label, a
    feature that is not a number, NaN, infinite or beyond float32, an unreadable time, two
    rows with the same id and time, and a sequence of one step (no step has a neighbour)."""
    missing = [
        c for c in (id_column, time_column, label_column, *feature_columns) if c not in frame
    ]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {list(frame.columns)}")
    if not feature_columns:
        raise DataError(f"{where}: no feature columns given")
    if frame.empty:
        raise DataError(f"{where}: no rows")
    frame = frame.reset_index(drop=True)  # rows are named by position
    for column in (id_column, label_column):
        check_filled(frame, column, where)
    check_one_kind(frame[id_column], where, id_column)
    values = numeric_columns(frame, list(feature_columns), where).astype(np.float32)
    keys = pd.DataFrame(
        {
            "id": frame[id_column],
            "time": time_order(frame[time_column], where, time_column, time_format),
        }
    )
    repeated = keys.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((keys == keys.iloc[row]).all(axis=1).to_numpy())[0])
        raise DataError(
            f"{where}: sequence {_shown(keys['id'].iloc[row])} has two rows at "
            f"{time_column!r} {_shown(frame[time_column].iloc[row])} (rows {first} and {row}); "
            "keep one row per step"
        )
    labels = frame[label_column].astype(str).to_numpy()
    times = frame[time_column].to_numpy()
    out: list[StepSeries] = []
    for seq_id, group in keys.groupby("id", sort=True):
        rows = group.sort_values("time", kind="stable").index.to_numpy()
        if len(rows) < 2:
            raise DataError(
                f"{where}: sequence {_shown(seq_id)} has one step (row {rows[0]}); per-step labels "
                "need at least two"
            )
        shown = seq_id.item() if isinstance(seq_id, np.generic) else seq_id
        out.append(StepSeries(shown, times[rows], values[rows], labels[rows]))
    return out


def _shown(value: object) -> str:
    """A cell as a message quotes it: numpy scalars as the Python value they hold."""
    return quote(value.item() if isinstance(value, np.generic) else value)


def hold_out(sequences: Sequence[S], n_val: int, seed: int) -> tuple[list[S], list[S]]:
    """`(fit, val)`: `n_val` whole sequences drawn with `seed` for validation, the rest (in
    their order) to fit on. Whole series, because neighbouring steps are near copies: a step
    held out beside fitted ones would score the classifier on what it has seen."""
    if not 0 < n_val < len(sequences):
        raise ValueError(f"n_val must be between 1 and {len(sequences) - 1}; got {n_val}")
    held = set(np.random.default_rng(seed).choice(len(sequences), n_val, replace=False).tolist())
    fit = [s for i, s in enumerate(sequences) if i not in held]
    val = [s for i, s in enumerate(sequences) if i in held]
    return fit, val


# --- scores -------------------------------------------------------------------------------


class Segment(NamedTuple):
    """A maximal run of one label: steps `start` up to, not including, `stop`."""

    label: str
    start: int
    stop: int


def segments(labels: np.ndarray) -> list[Segment]:
    """The segments of one label sequence, in time order."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    stops = np.r_[starts[1:], labels.size]
    return [Segment(str(labels[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def matched(
    gold: Sequence[Segment], predicted: Sequence[Segment], min_iou: float | None
) -> list[Segment]:
    """The predicted segments that match a gold segment of the same label: the same start and
    stop when `min_iou` is None, else an intersection over union of at least `min_iou`. Each
    gold segment matches at most one predicted segment (the earliest), which a `min_iou` of
    0.5 or more implies anyway. Both lists in time order, as `segments` gives them."""
    if min_iou is None:
        exact = set(gold)
        return [p for p in predicted if p in exact]
    gold_stops = np.array([g.stop for g in gold], dtype=np.int64)
    taken: set[int] = set()
    hits = []
    for p in predicted:
        # Gold segments overlapping p: from the first that stops after p starts.
        j = int(np.searchsorted(gold_stops, p.start, side="right"))
        while j < len(gold) and gold[j].start < p.stop:
            g = gold[j]
            overlap = min(p.stop, g.stop) - max(p.start, g.start)
            union = max(p.stop, g.stop) - min(p.start, g.start)
            if g.label == p.label and j not in taken and overlap >= min_iou * union:
                taken.add(j)
                hits.append(p)
                break
            j += 1
    return hits


@dataclass(frozen=True)
class LabelScores:
    """One label's scores: per step (`steps`: steps both call it, steps predicted as it,
    gold steps of it) and per segment under both matchings."""

    steps: EntityCounts
    strict: EntityCounts
    overlap: EntityCounts


@dataclass(frozen=True)
class SeriesScores:
    """A prediction's scores against gold labels, micro-averaged over all sequences."""

    step_accuracy: float
    strict: EntityCounts
    """Segments matched by exact label, start and end."""
    overlap: EntityCounts
    """Segments matched by label and intersection over union ≥ `MIN_IOU`."""
    per_label: dict[str, LabelScores]
    """Every label in gold or predicted, sorted."""

    @property
    def segment_f1(self) -> float:
        """The headline segment F1: the overlap one (see the module docstring)."""
        return self.overlap.f1

    def metrics(self) -> dict[str, float]:
        """The headline numbers under their metric names (without a `test/` prefix)."""
        return {
            "step_accuracy": self.step_accuracy,
            "segment_f1": self.segment_f1,
            "segment_precision": self.overlap.precision,
            "segment_recall": self.overlap.recall,
            "segment_f1_strict": self.strict.f1,
        }


def score_series(
    gold: Sequence[np.ndarray], predicted: Sequence[np.ndarray], min_iou: float = MIN_IOU
) -> SeriesScores:
    """Step and segment scores of `predicted` against `gold`: one label array per sequence,
    the same sequences in the same order and of the same lengths."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    # Per label: steps right, predicted, gold; segments right (strict, overlap), predicted, gold.
    step_hit, step_found, step_truth = Counter[str](), Counter[str](), Counter[str]()
    strict_hit, overlap_hit, found, truth = (Counter[str]() for _ in range(4))
    for i, (gold_labels, predicted_labels) in enumerate(zip(gold, predicted, strict=True)):
        want, got = np.asarray(gold_labels).astype(str), np.asarray(predicted_labels).astype(str)
        if want.shape != got.shape:
            raise ValueError(f"sequence {i}: {want.size} gold labels but {got.size} predicted")
        step_hit.update(want[want == got].tolist())
        step_found.update(got.tolist())
        step_truth.update(want.tolist())
        gold_segments, predicted_segments = segments(want), segments(got)
        strict_hit.update(s.label for s in matched(gold_segments, predicted_segments, None))
        overlap_hit.update(s.label for s in matched(gold_segments, predicted_segments, min_iou))
        found.update(s.label for s in predicted_segments)
        truth.update(s.label for s in gold_segments)
    n_steps = step_truth.total()
    return SeriesScores(
        step_accuracy=step_hit.total() / n_steps if n_steps else 0.0,
        strict=EntityCounts(strict_hit.total(), found.total(), truth.total()),
        overlap=EntityCounts(overlap_hit.total(), found.total(), truth.total()),
        per_label={
            label: LabelScores(
                steps=EntityCounts(step_hit[label], step_found[label], step_truth[label]),
                strict=EntityCounts(strict_hit[label], found[label], truth[label]),
                overlap=EntityCounts(overlap_hit[label], found[label], truth[label]),
            )
            for label in sorted(step_found.keys() | step_truth.keys())
        },
    )


# --- the sliding-window baseline ----------------------------------------------------------


def window_features(values: np.ndarray, window: int) -> np.ndarray:
    """`(T, 5F)` features of each step of one sequence `(T, F)`: the mean, standard deviation,
    minimum, maximum and last minus first value of each channel over the centred `window`
    (odd) steps, cut at the sequence's ends (the first step sees only itself and what
    follows)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and positive; got {window}")
    half = window // 2
    n_steps = len(values)
    padded = np.pad(values.astype(np.float64), ((half, half), (0, 0)), constant_values=np.nan)
    views = sliding_window_view(padded, window, axis=0)  # (T, F, window), NaN past the ends
    steps = np.arange(n_steps)
    first, last = np.maximum(steps - half, 0), np.minimum(steps + half, n_steps - 1)
    return np.concatenate(
        [
            np.nanmean(views, axis=-1),
            np.nanstd(views, axis=-1),
            np.nanmin(views, axis=-1),
            np.nanmax(views, axis=-1),
            values[last] - values[first],
        ],
        axis=1,
    )


def majority_filter(codes: np.ndarray, window: int, n_classes: int) -> np.ndarray:
    """Each step's label code replaced by the most frequent one in the centred `window` (odd)
    steps around it, cut at the ends; a tie keeps the step's own code if it is among the
    tied, else the lowest. `window` 1 returns `codes` unchanged."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and positive; got {window}")
    if window == 1:
        return codes
    half = window // 2
    steps = np.arange(len(codes))
    running = np.zeros((len(codes) + 1, n_classes))
    running[steps + 1, codes] = 1.0
    running = np.cumsum(running, axis=0)  # (T + 1, K): codes seen before each step
    first, stop = np.maximum(steps - half, 0), np.minimum(steps + half + 1, len(codes))
    counts = running[stop] - running[first]  # (T, K): codes in each step's window
    counts[steps, codes] += 0.5  # a tie goes to the step's own code
    return np.argmax(counts, axis=1)


@dataclass(frozen=True)
class WindowTrial:
    """One (window, smoothing) pair `fit_window_baseline` tried, with its validation scores
    and the seconds its window's classifier took to fit."""

    window: int
    smoothing: int
    val_step_accuracy: float
    val_segment_f1: float
    fit_s: float


@dataclass(frozen=True)
class WindowBaseline:
    """A fitted per-step classifier, its feature window and majority-filter length, and every
    pair tried on validation."""

    classifier: HistGradientBoostingClassifier
    window: int
    smoothing: int
    trials: tuple[WindowTrial, ...]


def fit_window_baseline(
    train: Sequence[Steps],
    val: Sequence[Steps],
    seed: int,
    windows: Sequence[int] = WINDOWS,
    smoothing: Sequence[int] = SMOOTHING,
) -> WindowBaseline:
    """Fit one classifier per feature window on every step of `train`, and keep the (window,
    smoothing) pair with the best segment F1 on `val` (ties: the better step accuracy, then
    the earlier pair). Deterministic: the classifier's randomness is seeded with `seed` and
    early stopping, which would hold out a random part of train, is off."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not windows or not smoothing:
        raise ValueError("fit_window_baseline needs at least one window and one smoothing")
    labels = np.concatenate([steps for _, steps in train])
    val_labels = [steps for _, steps in val]
    trials: list[WindowTrial] = []
    best: tuple[HistGradientBoostingClassifier, int, int] | None = None
    best_key = (-1.0, -1.0)
    for window in windows:
        start = time.perf_counter()
        classifier = HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
        with _one_thread():
            classifier.fit(np.concatenate([window_features(v, window) for v, _ in train]), labels)
        fit_s = time.perf_counter() - start
        classes = classifier.classes_
        codes = _step_codes(classifier, window, [values for values, _ in val])
        for length in smoothing:
            guessed = [classes[majority_filter(c, length, len(classes))] for c in codes]
            scores = score_series(val_labels, guessed)
            trials.append(
                WindowTrial(window, length, scores.step_accuracy, scores.segment_f1, fit_s)
            )
            if (scores.segment_f1, scores.step_accuracy) > best_key:
                best_key = (scores.segment_f1, scores.step_accuracy)
                best = (classifier, window, length)
    assert best is not None  # scores are at least 0 > -1, so the first pair set it
    return WindowBaseline(*best, trials=tuple(trials))


def predict(model: WindowBaseline, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One predicted label per step of each sequence `(T, F)`, majority-filtered."""
    classes = model.classifier.classes_
    return [
        classes[majority_filter(codes, model.smoothing, len(classes))]
        for codes in _step_codes(model.classifier, model.window, sequences)
    ]


def _step_codes(
    classifier: HistGradientBoostingClassifier, window: int, sequences: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The classifier's most probable class index per step, one array per sequence (one
    call for all steps)."""
    if not sequences:
        return []
    features = np.concatenate([window_features(values, window) for values in sequences])
    with _one_thread():
        codes = np.argmax(classifier.predict_proba(features), axis=1)
    return np.split(codes, np.cumsum([len(values) for values in sequences])[:-1])


def _one_thread() -> threadpool_limits:
    """The classifier's OpenMP work on one thread. On 3000 BasicMotions steps a fit took
    0.5 s on one thread and 12 s on two while other work kept both CPUs of a 2-CPU machine
    busy (OpenMP's threads wait spinning); a few thousand steps give threads little to share."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")
