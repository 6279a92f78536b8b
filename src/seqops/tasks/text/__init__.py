"""`text_classification`: raw text → one class, over token ids from a fitted tokenizer.

Data: labelled text (`data.path`, optional `data.val_path` / `data.test_path`; CSV, TSV,
Parquet or `<label> <text>` lines). The tokenizer (`tokenizers` library) is fitted on the
training split only; prepare stores token ids, `tokenizer.json` and the raw texts of each split
(`<split>.texts.json`: the test texts are what the release scores both registered models on,
the training and validation texts what the classical baseline is fitted and tuned on). The
network reads token ids through an embedding (optionally pretrained vectors,
`model.embeddings_path`). Evaluation, the McNemar scorer and the card's metrics are
every classifier's (`seqops.tasks.classifier`); the baseline beside the model is TF-IDF over
word 1-2 grams with logistic regression, its C picked on the validation split
(`tfidf_baseline`).

Serving takes one row per text with the text column (default `text`) and optionally the id
column (echoed back; row numbers when absent); a `.txt` request file is one text per line.

The task is split by stage: `task` (the seam), `prepare`, `train`, `evaluate`, `serve`
(export and serving), `release`, `card`; each stage imports only its part.
"""
