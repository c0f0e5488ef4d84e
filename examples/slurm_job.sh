#!/bin/bash
# A polyscale run on a Slurm cluster with the mpi transport: one rank per solver by default,
# rank 0 writes the run file (README, "Running on a cluster").
#
#   sbatch examples/slurm_job.sh                     # the example model
#   sbatch examples/slurm_job.sh my_model.py -p n=4  # any config and its parameters
#
# Before the first job, build mpi4py against the cluster's MPI (not the MPICH wheel of the
# `mpi` extra), so that srun starts the ranks through the site's PMI:
#   module load openmpi                       # or the site's MPI module
#   python3 -m venv .venv && .venv/bin/pip install -e .
#   MPICC=$(command -v mpicc) .venv/bin/pip install --no-binary=mpi4py --no-cache-dir mpi4py
#
#SBATCH --job-name=polyscale
#SBATCH --nodes=1
#SBATCH --ntasks=4                 # ranks: at least the ranks the model's placement asks for
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00            # the limit that ends a run whose solver hangs
#SBATCH --output=polyscale-%j.out

set -euo pipefail
module load openmpi 2>/dev/null || true        # the MPI mpi4py was built against (site-specific)
cd "${SLURM_SUBMIT_DIR:-.}"

CONFIG=${1:-examples/coupled_oscillators.py}
shift || true

# one thread per rank: numba and BLAS must not compete with the other ranks for the cores
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export NUMBA_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

# --mpi=pmix (or pmi2) as the site's MPI needs; `srun --mpi=list` shows what the cluster offers
srun --mpi=pmix .venv/bin/python -m polyscale run "$CONFIG" --transport mpi \
    --out "run-${SLURM_JOB_ID:-local}.h5" --quiet "$@"
