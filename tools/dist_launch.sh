#!/usr/bin/env bash
# Runs a Python script as NPROC processes per node with torchrun; the script gets `--launcher pytorch`.
# tools/dist_train.sh and tools/dist_test.sh are the usual entry points; this is the part they share.
#
#   bash tools/dist_launch.sh NPROC SCRIPT [script args...]
#
# Environment:
#   NNODES       number of nodes (default 1)
#   NODE_RANK    this node's index, 0..NNODES-1 (default 0)
#   MASTER_ADDR  address of node 0 (default 127.0.0.1; required when NNODES > 1)
#   PORT         rendezvous port on node 0 (default: a free port on one node, 29500 across nodes,
#                where every node must be given the same value)
#   PYTHON       interpreter (default: python)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"

if [ $# -lt 2 ]; then
  echo "usage: $0 NPROC SCRIPT [script args...]" >&2
  exit 2
fi
nproc_per_node=$1
script=$2
shift 2

python=${PYTHON:-python}
nnodes=${NNODES:-1}
node_rank=${NODE_RANK:-0}
require_count 'NPROC (processes per node)' "$nproc_per_node" 1
require_count NNODES "$nnodes" 1
require_count NODE_RANK "$node_rank" 0
[ "$node_rank" -lt "$nnodes" ] || { echo "$0: NODE_RANK=$node_rank must be below NNODES=$nnodes" >&2; exit 2; }

if [ "$nnodes" -gt 1 ]; then
  if [ -z "${MASTER_ADDR:-}" ]; then
    echo "$0: NNODES=$nnodes needs MASTER_ADDR, the address of node 0, on every node" >&2
    exit 2
  fi
  master_addr=$MASTER_ADDR
  port=${PORT:-29500}
else
  master_addr=${MASTER_ADDR:-127.0.0.1}
  # Each single-node job gets its own port, so several jobs can share a machine.
  port=${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}
fi

exec "$python" -m torch.distributed.run \
  --nnodes="$nnodes" \
  --node-rank="$node_rank" \
  --master-addr="$master_addr" \
  --master-port="$port" \
  --nproc-per-node="$nproc_per_node" \
  "$script" "$@" --launcher pytorch
