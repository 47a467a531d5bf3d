#!/bin/bash
# Submits one of the example jobs as a Slurm array plus the gather job that runs once every
# task has succeeded (--dependency=afterok). Run from the folder the jobs should run in; set
# DDLENS to the ddlens binary unless it is on PATH (exported to the jobs).
#   examples/slurm/submit.sh eval SET DIR             20-run standard evaluation -> DIR/eval.json
#   examples/slurm/submit.sh influence SET DIR OUT    influence, paper budget    -> OUT/influence.json
#   examples/slurm/submit.sh mixing SET DIR OUT       mixing, paper budget       -> OUT/mixing.json
#   examples/slurm/submit.sh experts - DIR            100 MTT experts, 50 epochs -> DIR/experts.json
#   examples/slurm/submit.sh agreement SET OUT        agreement, paper budget    -> OUT/agreement.json
# Extra sbatch options (account, partition, GPUs) go in SBATCH_* variables or the scripts.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kind=${1:?usage: submit.sh eval|influence|mixing|agreement|experts SET DIR [OUT]}
set_file=${2:?usage: submit.sh eval|influence|mixing|agreement|experts SET DIR [OUT]}
dir=${3:?usage: submit.sh eval|influence|mixing|agreement|experts SET DIR [OUT]}
export DDLENS=${DDLENS:-ddlens}
case "$kind" in
  eval) array=$(sbatch --parsable "$here/eval-20.sbatch" "$set_file" "$dir") ;;
  influence)
    out=${4:?influence needs OUT}
    array=$(sbatch --parsable "$here/influence-paper.sbatch" "$set_file" "$dir" "$out") ;;
  mixing)
    out=${4:?mixing needs OUT}
    array=$(sbatch --parsable "$here/mixing-paper.sbatch" "$set_file" "$dir" "$out") ;;
  agreement) array=$(sbatch --parsable "$here/agreement-paper.sbatch" "$dir") ;;
  experts) array=$(sbatch --parsable "$here/experts-paper.sbatch" "$dir") ;;
  *) echo "submit.sh: unknown job '$kind' (eval, influence, mixing, agreement or experts)" >&2; exit 2 ;;
esac
array=${array%%;*}
gather=$(sbatch --parsable --dependency="afterok:$array" "$here/gather.sbatch" "$kind" "$dir" "$set_file")
echo "array job $array, gather job ${gather%%;*} (runs after every task succeeded)"
