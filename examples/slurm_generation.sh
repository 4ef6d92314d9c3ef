#!/bin/bash
# Generate metamers for every input x layer on a SLURM cluster, then merge.
#
#   sbatch examples/slurm_generation.sh            # 100 array tasks
#   sbatch --dependency=afterok:<jobid> --wrap "python run_generation.py --merge \
#       --network=word_reduced_aliasing --output_dir=$OUT"
#
# Each task takes every 100th (input, layer) job, writes per-layer part files under
# $OUT/<network>/parts/, and can be re-submitted: finished jobs are skipped and an
# interrupted synthesis resumes from its state file.
#SBATCH --job-name=metamers
#SBATCH --array=0-99
#SBATCH --time=12:00:00
#SBATCH --gres=gpu:1
#SBATCH --mem=16G
set -euo pipefail
NETWORK=${NETWORK:-word_reduced_aliasing}
INPUTS=${INPUTS:-stimuli/}
OUT=${OUT:-/scratch/$USER/metamers}
python run_generation.py --network="$NETWORK" --input="$INPUTS" --layer=all \
    --num_shards="${SLURM_ARRAY_TASK_COUNT:-100}" --shard_index="$SLURM_ARRAY_TASK_ID" \
    --output_dir="$OUT" --figures=false
