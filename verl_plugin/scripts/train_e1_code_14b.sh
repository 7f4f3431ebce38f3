#!/usr/bin/env bash
# E1-Code-14B: budgeted GRPO (t = s = 1024) from DeepCoder-14B-Preview on 1 node x 8 GPUs, rewarded
# by the code sandbox. Needs verl 0.9 with vLLM on the node, and a sandbox fleet (see
# verl_plugin/README.md). Extra arguments are Hydra overrides for verl.trainer.main_ppo.
#
#   verl_plugin/scripts/train_e1_code_14b.sh                  # the full run (config e1_code_14b_grpo)
#   verl_plugin/scripts/train_e1_code_14b.sh --smoke          # one GPU, 1.5B model, 2 steps
#   verl_plugin/scripts/train_e1_code_14b.sh trainer.total_training_steps=10
#
# Environment:
#   DATA_DIR           parquet directory (default <repo>/data)
#   TRAIN_SOURCES      data prep inputs, `SOURCE=PATH ...` (used when $DATA_DIR/deepcoder_train.parquet is missing)
#   VAL_SOURCES        same for $DATA_DIR/lcb_test.parquet
#   SANDBOX_ADDRESSES  the fleet, comma-separated host:port (default: start one local `sandbox serve`)
#   PYTHON             interpreter with verl, vLLM and this project (default <repo>/.venv/bin/python)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
DATA_DIR="${DATA_DIR:-$REPO/data}"
CONFIG=e1_code_14b_grpo
if [ "${1:-}" = "--smoke" ]; then
  CONFIG=e1_smoke_1gpu
  shift
fi
# verl_plugin is imported by Ray workers (agent loop, reward): make the checkout importable everywhere.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$DATA_DIR"

if [ "$CONFIG" = e1_smoke_1gpu ]; then
  TRAIN="$DATA_DIR/smoke.parquet"
  if [ ! -f "$TRAIN" ]; then
    [ -n "${TRAIN_SOURCES:-}" ] || { echo "train: set TRAIN_SOURCES='livecodebench=PATH' (e.g. an rllm LiveCodeBench json) or put $TRAIN in place" >&2; exit 2; }
    "$PYTHON" -m verl_plugin.data $TRAIN_SOURCES \
      --limit 64 --agent-name budgeted_rollout_smoke --output "$TRAIN"
  fi
  VAL="$TRAIN"
else
  TRAIN="$DATA_DIR/deepcoder_train.parquet"
  VAL="$DATA_DIR/lcb_test.parquet"
  if [ ! -f "$TRAIN" ]; then
    [ -n "${TRAIN_SOURCES:-}" ] || { echo "train: set TRAIN_SOURCES='primeintellect=... taco=... livecodebench=...' or put $TRAIN in place" >&2; exit 2; }
    "$PYTHON" -m verl_plugin.data $TRAIN_SOURCES --output "$TRAIN"
  fi
  if [ ! -f "$VAL" ]; then
    [ -n "${VAL_SOURCES:-}" ] || { echo "train: set VAL_SOURCES='livecodebench=...' or put $VAL in place" >&2; exit 2; }
    "$PYTHON" -m verl_plugin.data $VAL_SOURCES --split test --output "$VAL"
  fi
fi

SERVER_PID=""
if [ -z "${SANDBOX_ADDRESSES:-}" ]; then
  # No fleet given: one local server next to the trainer (uses this node's CPUs).
  SOCKET="/tmp/code-sandbox-$$.sock"
  "$REPO/.venv/bin/sandbox" serve --address "unix:$SOCKET" &
  SERVER_PID=$!
  trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do [ -S "$SOCKET" ] && break; sleep 0.2; done
  export SANDBOX_ADDRESSES="unix:$SOCKET"
fi
echo "train: config $CONFIG, sandbox at $SANDBOX_ADDRESSES" >&2

# The agent-loop file as an absolute path: verl resolves it in each Ray worker's working
# directory, which on an existing cluster (or another node) is not this checkout.
"$PYTHON" -m verl.trainer.main_ppo \
  --config-path="$REPO/verl_plugin/config" --config-name="$CONFIG" \
  data.train_files="$TRAIN" data.val_files="$VAL" \
  actor_rollout_ref.rollout.agent.agent_loop_config_path="$REPO/verl_plugin/config/agent_loops.yaml" \
  "$@"
