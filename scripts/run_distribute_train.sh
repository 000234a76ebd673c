#!/usr/bin/env bash
# Data-parallel training on one machine with MindSpore's own launcher, msrun
# (Ascend: HCCL, GPU: NCCL, CPU: MindSpore's collective library).
#
#   bash scripts/run_distribute_train.sh NUM_WORKERS CONFIG [train.py arguments]
#
# Every worker builds identical initial weights, reads its own shard of each epoch,
# gradients are averaged over workers, metrics are summed over workers, and rank 0 writes
# the checkpoints. Environment: MASTER_PORT (default 8118), LOG_DIR (default
# <output dir of the run or outputs>/msrun_log, one worker_N.log a worker).
set -euo pipefail
usage="usage: bash scripts/run_distribute_train.sh NUM_WORKERS CONFIG [train.py arguments]"
if [ $# -lt 2 ]; then echo "$usage" >&2; exit 2; fi
workers=$1; config=$2; shift 2
if ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NUM_WORKERS must be a positive integer, got '$workers'" >&2; exit 2
fi
if [ ! -f "$config" ]; then echo "error: config file $config does not exist" >&2; exit 2; fi
if ! command -v msrun >/dev/null 2>&1; then
    echo "error: msrun not found: it comes with MindSpore (pip install -r requirements.txt)" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
log_dir=${LOG_DIR:-outputs/msrun_log}
mkdir -p "$log_dir"
exec msrun --worker_num="$workers" --local_worker_num="$workers" \
    --master_port="${MASTER_PORT:-8118}" --join=True --log_dir="$log_dir" \
    "$repo/train.py" --config "$config" "$@"
