#!/usr/bin/env bash
# The GPU checks of issue 17 as one short run on a machine with a CUDA device: the CUDA tests,
# then the torch benchmarks with --device cuda at the paper's shapes. Each step has its own time
# limit, so one slow step cannot take the others' time; each writes its log to OUT_DIR.
#
#   benchmarks/cuda_checks.sh [OUT_DIR] [PYTHON]
#
# Needs torch with CUDA, numpy, scipy, pandas, tqdm and pytest; sage-importance and lime for
# their methods' tests. Nothing else of the workflow's environment is used (no AnnData files).
set -u
out=${1:-cuda-checks}
python=${2:-python3}
mkdir -p "$out"
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PYTHONPATH="$repo/src:$repo/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

step() {  # name, seconds allowed, command...
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s): $*"
  local started=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - started)) s"
  # tqdm redraws its bar with carriage returns: show lines, not one long redraw.
  tr '\r' '\n' <"$out/$name.log" | grep -v '^\s*$' | grep -v '%|' | tail -n 12 | sed 's/^/   /'
}

step environment 20 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv && \
  $python -c 'import torch; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, torch.cuda.get_device_name(0))'"
step tests 100 "$python" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py
step explain_speed 60 "$python" benchmarks/explain_speed.py --device cuda --threads 4
step explain_genomewide 170 "$python" benchmarks/explain_genomewide.py --device cuda --targets 1024 --batch 256 \
  --compare 8 --threads 4
# The cis path's group-unit search runs on the CPU whatever the device (measured on the CPU).
step train_paper_shapes 110 "$python" benchmarks/train_paper_shapes.py --device cuda --epochs 3 --cis-units 0 \
  --threads 4
step surrogate_step 50 "$python" benchmarks/surrogate_step.py --device cuda --steps 20 --threads 4
