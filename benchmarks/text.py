"""SST-2 test accuracy: the seqops text pipeline beside the TF-IDF + logistic regression floor.

    .venv/bin/python benchmarks/text.py --reports reports            # after an SST-2 `dvc repro`
    .venv/bin/python benchmarks/text.py --reports /tmp/x/reports --data data/raw/sst2

Prints a markdown table. The pipeline row is read from the run's own reports (`metrics.json`,
`tune.json`, `train.json`; `.ci/text_pipeline.sh` produces them in a scratch copy); the TF-IDF
row is fitted here on the same split: word 1-2 grams, sublinear tf, logistic regression with C
chosen on the dev split (0.813, the reference figure for this split).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def read_split(path: Path) -> tuple[list[str], list[str]]:
    from seqops.data.text import read_labelled_text

    return read_labelled_text(path, "text", "label")


def tfidf_floor(data: Path) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    train, dev, test = (read_split(data / f"stsa.binary.{s}") for s in ("train", "dev", "test"))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform(train[0])
    best_c, best_dev = 1.0, -1.0
    for c in (1.0, 4.0, 10.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, train[1])
        score = accuracy_score(dev[1], model.predict(vectorizer.transform(dev[0])))
        if score > best_dev:
            best_c, best_dev = c, score
    model = LogisticRegression(C=best_c, max_iter=2000).fit(x_train, train[1])
    predicted = model.predict(vectorizer.transform(test[0]))
    return {
        "accuracy": accuracy_score(test[1], predicted),
        "f1_macro": f1_score(test[1], predicted, average="macro"),
        "wall_s": time.perf_counter() - start,
        "detail": f"1-2 grams, C={best_c:g} (dev {best_dev:.3f})",
    }


def pipeline_figure(reports: Path) -> dict[str, Any] | None:
    metrics_file = reports / "metrics.json"
    if not metrics_file.is_file():
        return None
    test = json.loads(metrics_file.read_text())["test"]

    def wall(name: str) -> float:
        path = reports / name
        return float(json.loads(path.read_text()).get("wall_s", 0.0)) if path.is_file() else 0.0

    tune = (
        json.loads((reports / "tune.json").read_text()) if (reports / "tune.json").is_file() else {}
    )
    return {
        "accuracy": test["accuracy"],
        "f1_macro": test["f1_macro"],
        "wall_s": wall("tune.json") + wall("train.json"),
        "detail": f"tuned over {tune.get('n_trials', 0)} trials, no pretrained vectors",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--data", type=Path, default=REPO / "data" / "raw" / "sst2")
    args = parser.parse_args()
    rows = []
    ours = pipeline_figure(args.reports)
    if ours is not None:
        rows.append(("seqops BiRNN (params/sst2.yaml)", ours))
    rows.append(("TF-IDF + logistic regression", tfidf_floor(args.data)))
    print("| model | SST-2 test accuracy | macro-F1 | fit wall time | notes |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['accuracy']:.4f} | {r['f1_macro']:.4f} | {r['wall_s']:.0f} s "
            f"| {r['detail']} |"
        )
    if ours is None:
        print(f"\n(no {args.reports / 'metrics.json'}: run the SST-2 pipeline first)")


if __name__ == "__main__":
    main()
