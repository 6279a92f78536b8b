#!/usr/bin/env bash
# The WNUT-17 sequence-labeling pipeline (params/wnut17.yaml) end to end in a scratch copy of
# the repo, at a reduced budget (one tuning trial of one epoch, three training epochs), then
# checks on its reports: entity F1 and token accuracy beside the CRF baseline's, ONNX parity,
# the served tags equal to the evaluated model's on every test token; the gate's verdict is
# reported (a three-epoch tagger is not expected to pass it). Then `seqops predict` on raw
# sentences. Then the numeric-series side of the task: the basic_motions preset at its own
# budget, step accuracy above a floor chance cannot reach and ONNX parity. About 4 minutes on
# 2 cores.
#
#   .ci/labeling_pipeline.sh
#   KEEP=1 .ci/labeling_pipeline.sh
#   FULL_BUDGET=1 .ci/labeling_pipeline.sh      # the preset's own budget
set -euo pipefail
source "$(dirname "$0")/scratch_project.sh" labeling

(cd "$work" && seqops preset wnut17)
if [[ "${FULL_BUDGET:-}" != 1 ]]; then
  "$bin/python" - "$work/params.yaml" <<'PY'
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
params = yaml.safe_load(path.read_text())
params["tune"].update(n_trials=1, max_epochs=1)
params["train"].update(max_epochs=3, patience=3)
params["benchmark"].update(n_calls=200, warmup=20, throughput_calls=5)
path.write_text(yaml.safe_dump(params, sort_keys=False))
PY
fi
commit_scratch "WNUT-17 preset"

echo "== dvc repro (WNUT-17 preset, $([[ "${FULL_BUDGET:-}" == 1 ]] && echo "its own" || echo "reduced") budget)"
dvc repro

echo "== checks on the reports"
"$bin/python" - <<'PY'
import json
import sys
from pathlib import Path

reports = Path("reports")
metrics = json.loads((reports / "metrics.json").read_text())
export = json.loads((reports / "export.json").read_text())
release = json.loads((reports / "release.json").read_text())
test, baseline = metrics["test"], metrics["baseline"]
problems = []
for key in ("entity_f1", "entity_precision", "entity_recall", "token_accuracy"):
    if not 0.0 <= test[key] <= 1.0:
        problems.append(f"test {key} = {test[key]}")
if test["n"] != 1287:
    problems.append(f"{test['n']} test sentences, WNUT-17 has 1287")
if not baseline or any("entity_f1" not in scores for scores in baseline.values()):
    problems.append(f"no CRF baseline with entity_f1: {baseline}")
if not export["parity"]["passed"]:
    problems.append(f"ONNX parity failed: {export['parity']}")
if export["served"].get("raw_sentence_tag_mismatches") != 0:
    problems.append(f"served tags differ from the evaluated model's: {export['served']}")
for name in ("per_type_f1.csv", "confusion.csv"):
    if not list(reports.joinpath("plots").rglob(name)):
        problems.append(f"reports/plots/**/{name} missing")
scores = ", ".join(f"{name} {s['entity_f1']:.4f}" for name, s in baseline.items())
print(f"test entity F1 {test['entity_f1']:.4f}, token accuracy {test['token_accuracy']:.4f}; "
      f"baseline {scores}; gate {'passed' if release['passed'] else 'refused'}")
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
PY

echo "== seqops predict on raw sentences (one per line, whitespace-tokenised)"
printf 'I saw Taylor Swift in New York today\nnew iPhone from Apple is out\n' > in.txt
seqops predict --model models --input in.txt

# The numeric-series side of the same task: the BasicMotions segments preset at its own budget
# (about a minute), in a second scratch copy.
echo "== basic_motions preset (numeric series, one label per step)"
bm="$(mktemp -d "${TMPDIR:-/tmp}/seqops-basic-motions.XXXXXX")"
[[ -z "${KEEP:-}" ]] && trap 'rm -rf "$work" "$bm"' EXIT
cp -r "$repo/src" "$repo/dvc.yaml" "$repo/params.yaml" "$repo/params" "$bm/"
mkdir "$bm/data" && cp -r "$repo/data/raw" "$bm/data/"
find "$bm" -name __pycache__ -prune -exec rm -rf {} +
cd "$bm" && seqops preset basic_motions && git init -q && dvc init -q
git -c user.name=ci -c user.email=ci@localhost add -A
git -c user.name=ci -c user.email=ci@localhost commit -qm "BasicMotions preset"
dvc repro
"$bin/python" - <<'PY'
import json
import sys
from pathlib import Path

metrics = json.loads(Path("reports/metrics.json").read_text())
export = json.loads(Path("reports/export.json").read_text())
test, baseline = metrics["test"], metrics["baseline"]
print(f"test step accuracy {test['step_accuracy']:.4f}, segment F1 {test['segment_f1']:.4f}; "
      + ", ".join(f"{n} {s['step_accuracy']:.4f} / {s['segment_f1']:.4f}" for n, s in baseline.items()))
problems = []
if test["step_accuracy"] < 0.8:
    problems.append(f"test step accuracy {test['step_accuracy']:.4f} < 0.8 (chance is 0.25)")
if not export["parity"]["passed"]:
    problems.append(f"ONNX parity failed: {export['parity']}")
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
PY
echo "== labeling pipelines done in $(( $(date +%s) - start )) s"
