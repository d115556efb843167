#!/bin/bash
# aftershock on Slurm: a job array runs the shards, a dependent job merges them.
#   sbatch deploy/slurm-array.sh
# Each array task runs shard (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) of
# SLURM_ARRAY_TASK_COUNT (`--shard slurm`), so 0-based and 1-based arrays both work.
#SBATCH --job-name=aftershock
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=1G
#SBATCH --output=results/slurm-%A_%a.log
set -euo pipefail
mkdir -p results
aftershock run scenarios/db-cluster-outage.ron --trials 1000000 --shard slurm \
  --threads "${SLURM_CPUS_PER_TASK}" --out "results/shard-${SLURM_ARRAY_TASK_ID}" --quiet

# The last task to start queues the merge, to run once every task has succeeded.
if [ "${SLURM_ARRAY_TASK_ID}" = "${SLURM_ARRAY_TASK_MAX}" ]; then
  sbatch --dependency="afterok:${SLURM_ARRAY_JOB_ID}" --job-name=aftershock-merge \
    --output=results/merge.log --wrap "aftershock merge results/shard-* --out results/merged"
fi
