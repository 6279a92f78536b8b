"""seqops: a reproducible MLOps pipeline for recurrent sequence models.

`dvc repro` runs prepare → train → evaluate (and the stages later issues add); each stage is
a module in `seqops.stages` with a typed function and a thin `main()`.
"""

__version__ = "0.1.0"
