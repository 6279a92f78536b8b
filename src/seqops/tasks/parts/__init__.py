"""Each task's parts, one module per stage group: the interface a task's part implements,
what the tasks' parts share for that stage, and the registry that stage looks a part up in.

| module     | looked up by                                | methods                          |
|------------|---------------------------------------------|----------------------------------|
| `prepare`  | prepare                                     | `prepare`, `summary`             |
| `train`    | tune and train (`model.training`)           | `network_args`, `objective`, ... |
| `evaluate` | evaluate (`model.runtime`)                  | `evaluate`                       |
| `serve`    | export, benchmark, serving, `seqops predict`| `codec`, `output_shape`, ...     |
| `release`  | evaluate and release (`gate`)               | `scorer`, `extra_checks`, ...    |
| `card`     | release (`model_card`)                      | `card_*`                         |

Every part subclasses its task's seam (`seqops.tasks.base.Task`: name, types, config checks),
so it is typed by the task's own metadata, report and metrics. This package imports none of
its modules: a stage's import closure holds the parts it runs and no other.
"""
