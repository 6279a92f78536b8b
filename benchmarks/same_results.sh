#!/usr/bin/env bash
# A refactor proves itself by identical results: run the default pipeline's and each preset's
# prepare → tune → train → evaluate with the code of two commits on the same params (the
# presets at a small budget) and compare reports/metrics.json byte for byte.
#
#   benchmarks/same_results.sh OLD NEW            # e.g. benchmarks/same_results.sh 831dac3 HEAD
#   PRESETS="sst2 co2" benchmarks/same_results.sh OLD NEW
#
# Both sides run NEW's dvc.yaml and params (the old code reads them: run it across changes
# that keep params.yaml's keys); OLD's code is put first on PYTHONPATH. About 2 minutes per
# preset on 2 cores. Exit 1 when any metrics differ.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
old=$(git -C "$repo" rev-parse "$1") new=$(git -C "$repo" rev-parse "$2")
export DVC_NO_ANALYTICS=1 OMP_NUM_THREADS=1
scratch="$(mktemp -d "${TMPDIR:-/tmp}/seqops-same.XXXXXX")"
trap 'git -C "$repo" worktree remove --force "$scratch/old-src" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git -C "$repo" worktree add -q --detach "$scratch/old-src" "$old"
status=0
for preset in default ${PRESETS-sst2 co2 tecator}; do
  for side in old new; do
    work="$scratch/$preset-$side"
    git clone -q "$repo" "$work" && git -C "$work" checkout -q "$new"
    ln -s "$repo/.venv" "$work/.venv"
    (
      cd "$work"
      if [[ $preset != default ]]; then
        .venv/bin/seqops preset "$preset" >/dev/null
        .venv/bin/python - <<'PY'
import yaml

p = yaml.safe_load(open("params.yaml"))
p["train"].update(max_epochs=2, patience=2, epoch_examples=0, ensemble=1)
p["tune"].update(n_trials=2, max_epochs=1, workers=1)
p["model"]["hidden_size"] = 16
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
      fi
      [[ $side == old ]] && export PYTHONPATH="$scratch/old-src/src"
      PATH="$work/.venv/bin:$PATH" .venv/bin/dvc repro evaluate >repro.log 2>&1 \
        || { echo "$preset ($side code): dvc repro failed"; tail -5 repro.log; exit 1; }
    )
  done
  if cmp -s "$scratch/$preset-old/reports/metrics.json" "$scratch/$preset-new/reports/metrics.json"; then
    echo "$preset: reports/metrics.json identical"
  else
    echo "$preset: reports/metrics.json DIFFERS"; status=1
  fi
done
exit $status
