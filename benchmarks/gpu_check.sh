#!/usr/bin/env bash
# One-shot GPU check (benchmarks/gpu_check.py: steps most valuable first, each with a time budget,
# the summary JSON rewritten as each ends). Hard limit 8.5 minutes on the GPU, inside a 15-minute
# lease; 30 minutes for the CPU rehearsal (--dry-run).
#   benchmarks/gpu_check.sh                      # on the GPU machine (writes benchmarks/results/)
#   benchmarks/gpu_check.sh --out "$OUT/r"       # on the device tool: results come back
#   benchmarks/gpu_check.sh --dry-run            # every step at CPU smoke sizes, anywhere
#   benchmarks/gpu_check.sh --steps bench,peaks  # a rerun of some steps
# The GPU machine lacks ml_collections: benchmarks/gpu_wheels.sh puts its wheel into .whl/ here
# (carry .whl with the call), and this script installs .whl/*.whl into /tmp/mmer-site first.
# Through the device tool: run benchmarks/gpu_wheels.sh here, then one call with carry [".whl"],
# timeout_s 560 and the command
#   set -o pipefail; benchmarks/gpu_check.sh --out "$OUT/r" 2>&1 | tee "$OUT/gpu-check.log"
# (7 files come back: the summary, 5 step JSONs and the log; the limit is 8).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/mmer-site .whl/*.whl
  export PYTHONPATH="/tmp/mmer-site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 -c "import ml_collections" 2>/dev/null || {
  echo "gpu_check.sh: ml_collections is missing; run benchmarks/gpu_wheels.sh and carry .whl" >&2
  exit 2; }
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
# The CPU rehearsal (--dry-run) takes its own, longer budgets (gpu_check.py's STEPS).
case " $* " in *" --dry-run "*) exec timeout 1800 python3 benchmarks/gpu_check.py "$@";; esac
exec timeout 510 python3 benchmarks/gpu_check.py "$@"
