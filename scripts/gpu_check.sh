#!/usr/bin/env bash
# The GPU check, prepared to run once on a lent GPU machine in under 8 minutes (`make gpu-check`):
#   1. the CUDA path end to end: the smoke sweep on the GPU, its report, every cell ok and on cuda;
#   2. floor / harness / naive / seed-parallel for the default MLP and the CNN, with and without
#      train.bf16 and train.compile (scripts/bench_speed.py on cuda times both switches);
#   3. the `full` preset's wall time estimated from the CNN's measured rate.
# Output under results/gpu-check/: the smoke folder, speed.json and check.log.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results/gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1

echo "== 1. smoke sweep on the GPU"
timeout 150 "$PY" -m bench sweep=smoke device=cuda results_root="$OUT" force=true
"$PY" - "$OUT/smoke" <<'PY'
import sys
from bench.results import load_results
cells, _, problems = load_results(sys.argv[1])
assert not problems, problems
assert (cells["status"] == "ok").all(), cells[cells["status"] != "ok"][["cell_id", "error"]]
assert set(cells["device"]) == {"cuda"}, set(cells["device"])
print(f"smoke on cuda: {len(cells)} cells ok")
PY

echo "== 2-3. speed, MLP and CNN, switches on and off; the full preset's estimate"
# one run of each one-model loop a round: train.compile compiles every new model, and ten back-to-back
# runs would spend the time budget compiling
timeout 330 "$PY" scripts/bench_speed.py --device cuda --threads 0 --models default,cnn --seeds 20 \
  --steps 300 --repeats 5 --one-model-runs 1 --estimate-full --out "$OUT/speed.json"
