#!/usr/bin/env bash
# Downloads (here, with network) the pure-Python wheels the GPU machine lacks into .whl/, for
# benchmarks/gpu_check.sh there (name .whl in the device call's carry). The list is
# CARRIED_WHEELS of benchmarks/gpu_machine.py, whose test keeps it and the code in step.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
wheels=$(python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import gpu_machine; \
print(' '.join(gpu_machine.CARRIED_WHEELS))")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp -d .whl $wheels
ls .whl
