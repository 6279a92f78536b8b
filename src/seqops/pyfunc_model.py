"""The MLflow pyfunc model export logs, as code (MLflow's "models from code").

    mlflow.pyfunc.log_model(name="model", python_model=<this file's path>, code_paths=[seqops])

MLflow copies this file into the logged model and runs it when the model is loaded; it names
the model with `mlflow.models.set_model`. No pickled Python object is stored with the model,
so loading a registered model runs only this package's own code (`seqops.pyfunc_serving`), shipped
with it through `code_paths`.
"""

import mlflow

from seqops.pyfunc_serving import OnnxSequenceModel

mlflow.models.set_model(OnnxSequenceModel())
