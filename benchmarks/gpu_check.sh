#!/usr/bin/env bash
# One-shot GPU check of mmer_kernels/ (jax only): gpu-marked tests, kernel benchmark, autotuner,
# measured peaks, and (when torch is installed: ".[bench]") the mmer_jax vs PyTorch training
# comparison on cuda; JSON under benchmarks/results/. Hard limit 8 minutes.
#   benchmarks/gpu_check.sh             # on a GPU machine
#   benchmarks/gpu_check.sh --dry-run   # the CPU parts, anywhere (add --out DIR to redirect)
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 470 python benchmarks/gpu_check.py "$@"
