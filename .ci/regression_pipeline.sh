#!/usr/bin/env bash
# The Tecator regression pipeline (params/tecator.yaml, its own budget) end to end in a scratch
# copy of the repo, then checks on its reports: the ridge baseline at its measured value, the
# test RMSE against the preset's ceiling (reported), ONNX parity, the served prediction equal to the
# evaluated one, the gate's verdict; then `seqops predict` on raw spectra and
# benchmarks/regression.py. With the reduced CI tuning budget (2 trials of at most 40 epochs;
# the preset's own is 6 of 80, about 14 minutes of tuning on a loaded CI machine), about 4
# minutes on 2 idle cores.
#
#   .ci/regression_pipeline.sh
#   KEEP=1 .ci/regression_pipeline.sh
#   FULL_BUDGET=1 .ci/regression_pipeline.sh      # the preset's own tuning budget
#
# Every gate check is required, the quality ones included: with its random-kernel path the
# preset's model beats ridge regression (test RMSE about 1.1 against 2.07), so a refusal on
# quality is a regression.
set -euo pipefail
source "$(dirname "$0")/scratch_project.sh" regression
(cd "$work" && seqops preset tecator)
if [[ "${FULL_BUDGET:-}" != 1 ]]; then
  "$bin/python" - "$work/params.yaml" <<'PY'
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
params = yaml.safe_load(path.read_text())
params["tune"].update(n_trials=2, max_epochs=40)
path.write_text(yaml.safe_dump(params, sort_keys=False))
PY
fi
commit_scratch "Tecator preset"

echo "== dvc repro (Tecator preset, $([[ "${FULL_BUDGET:-}" == 1 ]] && echo "its own" || echo "reduced") tuning budget)"
dvc repro

echo "== checks on the reports"
"$bin/python" - <<'PY'
import json
import sys
from pathlib import Path

import yaml

reports = Path("reports")
params = yaml.safe_load(Path("params.yaml").read_text())
ceiling = params["release"]["max_metric"]
metrics = json.loads((reports / "metrics.json").read_text())
export = json.loads((reports / "export.json").read_text())
release = json.loads((reports / "release.json").read_text())
rmse, ridge = metrics["test"]["rmse"], metrics["baseline"]["ridge"]["rmse"]
problems = []
if abs(ridge - 2.065) > 1e-3:
    problems.append(f"ridge RMSE {ridge:.4f}, measured 2.065 on this split")
if not export["parity"]["passed"] or export["served"]["served_max_abs_diff"] > 1e-3:
    problems.append(f"ONNX parity / served prediction: {export['parity']}, {export['served']}")
quality = {"test/rmse", "not_worse_than_baseline", "beats_baseline"}
failed = [n for n, c in release["checks"].items() if not c["passed"]]
if rmse >= ridge:
    problems.append(f"test RMSE {rmse:.4f} does not beat ridge {ridge:.4f}")
if failed:
    problems.append(f"release checks failed: {failed}")
if not (reports / "plots" / "evaluate" / "scatter.csv").is_file():
    problems.append("reports/plots/evaluate/scatter.csv missing")
verdicts = ", ".join(
    f"{n} {'pass' if release['checks'][n]['passed'] else 'FAIL'}" for n in sorted(quality)
)
print(
    f"test RMSE {rmse:.4f} % fat (ceiling {ceiling}), R² {metrics['test']['r2']:.4f}; ridge "
    f"{ridge:.4f} ({rmse / ridge:.2f}x); {verdicts}; "
    f"gate {'passed' if release['passed'] else 'refused the model'}"
)
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
PY

echo "== seqops predict on raw spectra (the first 3 test samples)"
"$bin/python" -c "
import pandas as pd
from seqops.data.sources import load_bundled
raw = load_bundled('Tecator', 'test')
rows = [{'id': f'seq{i}', 'time': t, 'dim_0': float(v)}
        for i, s in enumerate(raw.sequences[:3]) for t, v in enumerate(s[:, 0])]
pd.DataFrame(rows).to_csv('spectra.csv', index=False)
print('actual fat %:', raw.labels[:3])
"
seqops predict --model models --input spectra.csv

echo "== benchmarks/regression.py"
"$bin/python" benchmarks/regression.py --run .
echo "== regression pipeline done in $(( $(date +%s) - start )) s"
