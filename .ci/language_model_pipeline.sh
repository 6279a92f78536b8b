#!/usr/bin/env bash
# The Shakespeare language-model pipeline (params/shakespeare.yaml) end to end in a scratch copy
# of the repo, at a reduced budget (a 1 x 128 LSTM, one epoch over the 38 training works, a
# shorter latency run), then checks on its reports: test bits per character well below chance
# and scored on exactly the test characters the Kneser-Ney baseline is scored on, ONNX parity
# and the streaming step graph's chunked parity; the gate's verdict is reported (a one-epoch
# model is not expected to beat Kneser-Ney). Then `seqops predict` on raw lines and `seqops
# generate` twice with one seed (the same text). A few minutes on 2 cores.
#
#   .ci/language_model_pipeline.sh
#   KEEP=1 .ci/language_model_pipeline.sh
#   FULL_BUDGET=1 .ci/language_model_pipeline.sh      # the preset's own budget
set -euo pipefail
source "$(dirname "$0")/scratch_project.sh" language-model

(cd "$work" && seqops preset shakespeare)
if [[ "${FULL_BUDGET:-}" != 1 ]]; then
  "$bin/python" - "$work/params.yaml" <<'PY'
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
params = yaml.safe_load(path.read_text())
params["model"].update(hidden_size=128, embedding_dim=32)
params["train"].update(max_epochs=1, batch_size=32, threads=1)
params["benchmark"].update(n_calls=200, warmup=20, throughput_calls=5)
path.write_text(yaml.safe_dump(params, sort_keys=False))
PY
fi
commit_scratch "Shakespeare preset"

echo "== dvc repro (Shakespeare preset, $([[ "${FULL_BUDGET:-}" == 1 ]] && echo "its own" || echo "reduced") budget)"
dvc repro

echo "== checks on the reports"
"$bin/python" - <<'PY'
import json
import math
import sys
from pathlib import Path

reports = Path("reports")
data = json.loads((reports / "data.json").read_text())
metrics = json.loads((reports / "metrics.json").read_text())
export = json.loads((reports / "export.json").read_text())
release = json.loads((reports / "release.json").read_text())
test, kn = metrics["test"], metrics["baseline"]["kneser_ney"]
problems = []
if data["documents"]["test"] != ["macbeth", "much_ado_about_nothing"]:
    problems.append(f"test works {data['documents']['test']}")
if test["n_tokens"] != data["n_tokens"]["test"] - 2:  # each work's first character is context
    problems.append(f"{test['n_tokens']} scored test characters of {data['n_tokens']['test']}")
chance = math.log2(data["vocab_size"])
if not 0 < test["bits_per_char"] < 3.5:
    problems.append(f"test bits per char {test['bits_per_char']:.4f} (chance {chance:.2f})")
if not export["parity"]["passed"]:
    problems.append(f"ONNX parity failed: {export['parity']}")
if not (export["streaming"]["available"] and export["streaming"]["passed"]):
    problems.append(f"no checked step graph: {export['streaming']}")
print(f"test {test['bits_per_char']:.4f} bits/char vs Kneser-Ney (order {kn['order']:.0f}) "
      f"{kn['bits_per_char']:.4f} on {test['n_tokens']:,} characters; "
      f"gate {'passed' if release['passed'] else 'refused'}")
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
PY

echo "== seqops predict on raw lines, seqops generate twice with one seed"
printf 'Shall I compare thee to a summer'"'"'s day?\nNow is the winter of our discontent\n' > in.txt
seqops predict --model models --input in.txt
args=(--model models --prompt "ROMEO:" --max-tokens 200 --temperature 0.8 --top-k 20 --seed 7)
seqops generate "${args[@]}" | tee gen1.txt
seqops generate "${args[@]}" > gen2.txt
cmp gen1.txt gen2.txt || { echo "FAIL: one seed gave two texts"; exit 1; }
echo "== language-model pipeline done in $(( $(date +%s) - start )) s"
