"""What every classification task shares, split by stage like the tasks themselves: `task`
(the data report, the metrics), `prepare` (label encoding, the class report), `train` (the
objective), `evaluate` (accuracy, macro-F1, ECE, curves, confusion matrix), `serve` (the
request codec's answer columns, argmax parity), `release` (the McNemar scorer) and `card`
(the model card's metrics). Not a task itself: the sequence and text classification tasks
build on it, so neither imports the other. This package imports none of its modules.
"""
