#!/usr/bin/env bash
# `make slurm-check`: sweeps through hydra/launcher=slurm on a single-node Slurm brought up on this machine
# (scripts/slurm-local.sh), checked by scripts/slurm_check.py, then the cluster is torn down again. Where
# Slurm cannot be installed (not root, no apt-get, no packages), it says so on one line and exits 0: a skip,
# not a failure. Any other problem exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rc=0
scripts/slurm-local.sh up || rc=$?
if [ "$rc" = 3 ]; then
    echo "slurm-check: skipped: Slurm and munge cannot be installed on this machine (needs root and apt-get)"
    exit 0
fi
trap 'scripts/slurm-local.sh down' EXIT
[ "$rc" = 0 ] || { echo "slurm-check: FAILED: the local Slurm did not come up" >&2; exit 1; }
eval "$(scripts/slurm-local.sh env)"
# the jobs run `python` on the node: this checkout's code and this venv's interpreter (sbatch passes the
# environment on)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" scripts/slurm_check.py "$@"
