#!/usr/bin/env bash
# Data-parallel training with MindSpore's own launcher, msrun (Ascend: HCCL, GPU: NCCL,
# CPU: MindSpore's collective library), on one node or several.
#
#   bash scripts/run_distribute_train.sh NUM_WORKERS CONFIG [train.py arguments]
#
# NUM_WORKERS is the number of workers (devices) on this node; run the same command on every
# node. Environment:
#   NUM_NODES    nodes in the job (default 1); total workers = NUM_WORKERS x NUM_NODES
#   NODE_RANK    this node's index, 0..NUM_NODES-1 (default 0); node 0 runs the scheduler
#   MASTER_ADDR  node 0's address (default 127.0.0.1; required when NUM_NODES > 1)
#   MASTER_PORT  the scheduler's port on node 0 (default 8118)
#   LOG_DIR      where worker_<rank>.log go (default outputs/msrun_log)
# Every worker builds identical initial weights and reads its own shard of each epoch;
# gradients are averaged, metrics are summed over workers, and global rank 0 (on node 0)
# writes the checkpoints: the output directory must be on a file system every node reads.
# If a worker dies, the job stops and the line "error: lost worker rank R ..." names it.
set -uo pipefail
usage="usage: bash scripts/run_distribute_train.sh NUM_WORKERS CONFIG [train.py arguments]"
die() { echo "error: $*" >&2; exit 2; }
if [ $# -lt 2 ]; then echo "$usage" >&2; exit 2; fi
workers=$1; config=$2; shift 2
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_count "$workers" || die "NUM_WORKERS must be a positive integer (workers on this node), got '$workers'"
nodes=${NUM_NODES:-1}
is_count "$nodes" || die "NUM_NODES must be a positive integer, got '$nodes'"
node_rank=${NODE_RANK:-0}
[[ "$node_rank" =~ ^[0-9]+$ ]] && [ "$node_rank" -lt "$nodes" ] \
    || die "NODE_RANK must be an integer from 0 to NUM_NODES-1 ($((nodes - 1))), got '$node_rank'"
port=${MASTER_PORT:-8118}
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] \
    || die "MASTER_PORT must be a port number from 1024 to 65535, got '$port'"
if [ "$nodes" -gt 1 ] && [ -z "${MASTER_ADDR:-}" ]; then
    die "MASTER_ADDR is not set: with NUM_NODES=$nodes every node needs node 0's address"
fi
addr=${MASTER_ADDR:-127.0.0.1}
[ -f "$config" ] || die "config file $config does not exist"
command -v msrun >/dev/null 2>&1 \
    || die "msrun not found: it comes with MindSpore (pip install -r requirements.txt)"
# node 0 hosts the scheduler, so MASTER_ADDR must be one of its own addresses; the other
# nodes must at least be able to resolve it
problem=$(python - "$addr" "$node_rank" <<'EOF'
import socket, sys
addr, node_rank = sys.argv[1], int(sys.argv[2])
def fail(message):
    print(message)
    sys.exit(1)
try:
    ip = socket.gethostbyname(addr)
except OSError:
    fail(f"MASTER_ADDR {addr} cannot be resolved to an address")
if node_rank == 0:
    try:
        socket.socket().bind((ip, 0))
    except OSError:
        fail(f"MASTER_ADDR {addr} ({ip}) is not an address of this machine, but NODE_RANK 0 "
             "runs the scheduler: run node 0 on the machine MASTER_ADDR names")
EOF
) || die "${problem:-cannot check MASTER_ADDR $addr}"
repo=$(cd "$(dirname "$0")/.." && pwd)
log_dir=${LOG_DIR:-outputs/msrun_log}
mkdir -p "$log_dir" || die "cannot create LOG_DIR $log_dir"
total=$((workers * nodes))
echo "node $node_rank of $nodes: $workers of $total workers, scheduler $addr:$port, logs in $log_dir"
# msrun itself, but with the scheduler on node 0 only (see msrun_node.py)
python "$repo/scripts/msrun_node.py" --worker_num="$total" --local_worker_num="$workers" \
    --node_rank="$node_rank" --master_addr="$addr" --master_port="$port" --join=True \
    --log_dir="$log_dir" \
    "$repo/train.py" --config "$config" "$@" 2>&1 | tee "$log_dir/msrun_node_$node_rank.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    python "$repo/mindspore_acmix/engine/lost_worker.py" "$log_dir" "$node_rank"
fi
exit "$status"
