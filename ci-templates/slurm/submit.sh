#!/bin/bash
# Queue a batch on Slurm: the shard array, then the gradebook once every shard has ended.
#   ci-templates/slurm/submit.sh hw1 submissions/hw1 graded/hw1 [shards]
# Run it from the course repository, where the virtual environment .venv (or $VENV) has
# deepgrade installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export ASSIGNMENT="$1" SUBMISSIONS="$2" OUT="$3"
shards="${4:-8}"
array=$(sbatch --parsable --export=ALL --array="1-$shards" "$here/grade-shards.sbatch")
# afterany: gather even when a shard failed; the gather grades what that shard left.
sbatch --export=ALL --dependency="afterany:${array%%;*}" "$here/gradebook.sbatch"
echo "queued shards as job $array and the gradebook after them; results in $OUT"
