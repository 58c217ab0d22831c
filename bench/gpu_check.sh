#!/usr/bin/env bash
# The prepared accelerator check (issue 28): BERT-base MLM + NSP step time and MFU, the tweets distillation step
# and fine-tuning examples/s, under JAX and TensorFlow, on whatever accelerator the machine has (bench/gpu_check.py
# says what each row is). Under 8 minutes on a GPU: each backend is bounded by its own timeout (--backend-timeout,
# 230 s), the whole by 470 s, and the JSON is written after each backend.
#   bash bench/gpu_check.sh            # on the GPU machine
#   bash bench/gpu_check.sh --small    # checks the script on a CPU in about a minute
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec timeout 470 "$PYTHON" bench/gpu_check.py "$@"
