# Sourced by the preset scripts (.ci/text_pipeline.sh, .ci/forecast_pipeline.sh): the shared
# environment and a scratch copy of the repo to run one preset's `dvc repro` in.
#
#   source "$(dirname "$0")/scratch_project.sh" text   # sets repo, bin, work, start; copies
#   ...write $work/params.yaml...
#   commit_scratch "SST-2 preset"                      # git + DVC project in $work, cd there
#
# KEEP=1 keeps the scratch copy (its path is printed); otherwise it is removed on exit.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.venv/bin"
export PATH="$bin:$PATH" DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1
# One intra-op thread per process: these small RNNs gain nothing from two, and two threads on a
# shared 2-core machine made tuning 10x slower (741 s instead of 58 s) in a measured run.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
unset MLFLOW_TRACKING_URI
work="$(mktemp -d "${TMPDIR:-/tmp}/seqops-$1.XXXXXX")"
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$work"' EXIT; else echo "scratch copy kept: $work"; fi
start=$(date +%s)
cp -r "$repo/src" "$repo/dvc.yaml" "$repo/params.yaml" "$repo/params" "$repo/benchmarks" "$work/"
mkdir "$work/data" && cp -r "$repo/data/raw" "$work/data/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +

commit_scratch() {
  cd "$work"
  git init -q && dvc init -q
  git -c user.name=ci -c user.email=ci@localhost add -A
  git -c user.name=ci -c user.email=ci@localhost commit -qm "$1"
}
