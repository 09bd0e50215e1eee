#!/bin/bash
# Queue a batch on Slurm: the shard array, then the gradebook once every shard has ended.
#   ci-templates/slurm/submit.sh hw1 submissions/hw1 graded/hw1 [SHARDS [TASKS]]
# SHARDS: how many shards the class is split into (8). TASKS: which of them to queue, as an
# sbatch --array list (2, or 2,5; default all): to resubmit a shard that was cancelled or
# failed, e.g. `submit.sh hw1 submissions/hw1 graded/hw1 8 2`; the gradebook is gathered again
# after it.
# Run it from the course repository, where the virtual environment .venv (or $VENV) has
# deepgrade installed; the logs go to that folder. Each shard gets the CPUs and memory of
# grade-shards.sbatch unless SHARD_CPUS or SHARD_MEM say otherwise (e.g. SHARD_CPUS=2
# SHARD_MEM=4G). sbatch's own variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) apply to both
# jobs.
set -euo pipefail
if [[ $# -lt 3 || $# -gt 5 ]]; then
    echo "usage: $0 ASSIGNMENT SUBMISSIONS OUT [SHARDS [TASKS]]" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
export ASSIGNMENT="$1" SUBMISSIONS="$2" OUT="$3" SHARDS="${4:-8}"
tasks="${5:-1-$SHARDS}"
mkdir -p "$OUT"  # with its parents: grade-batch creates OUT, not the folders above it
resources=()
if [[ -n ${SHARD_CPUS:-} ]]; then resources+=(--cpus-per-task="$SHARD_CPUS"); fi
if [[ -n ${SHARD_MEM:-} ]]; then resources+=(--mem="$SHARD_MEM"); fi
array=$(sbatch --parsable --export=ALL --array="$tasks" "${resources[@]}" "$here/grade-shards.sbatch")
array="${array%%;*}"  # "id;cluster" on a federation
# afterany: gather even when a shard failed or was cancelled; the gradebook names who is missing.
gradebook=$(sbatch --parsable --export=ALL --dependency="afterany:$array" "$here/gradebook.sbatch")
gradebook="${gradebook%%;*}"
echo "queued shards $tasks of $SHARDS as job $array and the gradebook as job $gradebook, after them;" \
    "results in $OUT, logs here: deepgrade-${array}_<shard>.log, deepgrade-gradebook-$gradebook.log"
