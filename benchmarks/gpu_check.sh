#!/usr/bin/env bash
# One-command GPU check (issue 17): time to 94 % on CIFAR-10 for both recipes, the input-pipeline
# profile, and every chapter in full mode with `course run`, under KERAS_BACKEND=jax, inside one
# 10-minute device command; one summary table in $OUT/summary.md.
#
#   bash benchmarks/gpu_check.sh --prepare   # here (pip's index reachable): wheels into .whl/,
#                                            # data into .gpu_data/ (both git-ignored locally)
#   bash benchmarks/gpu_check.sh             # on the GPU machine: device `run`, carry
#                                            # [".whl", ".gpu_data"], timeout_s 600
#   bash benchmarks/gpu_check.sh --dry-run   # on a CPU: TensorFlow hidden, tiny sizes, chapter 00
#                                            # in fast mode (tests/training/test_gpu_check.py)
#
# Other arguments go to benchmarks/gpu_check.py (--help lists them: --seeds, --time-limit,
# --chapters, --jobs, caps, --budget, --out).
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."

MODE=device
case "${1:-}" in
  --prepare) MODE=prepare; shift ;;
  --dry-run) MODE=dry-run; shift ;;
esac

# What the GPU machine's image lacks (its python3 is 3.12 with JAX, no TensorFlow or Keras):
# Keras and its two missing needs, and what `course run` needs to execute notebooks (nbclient,
# ipykernel and their dependencies; not jedi, 4.9 MB, which IPython imports only to complete
# code). Versions as in the course's tested environment.
WHEELS=(
  keras==3.15.1 namex==0.1.0 optree==0.20.0
  nbclient==0.11.0 nbformat==5.11.1 fastjsonschema==2.22.3 jsonschema==4.26.0
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  jupyter_client==8.10.0 jupyter_core==5.9.1 platformdirs==4.14.9 traitlets==5.16.1
  pyzmq==27.3.0 tornado==6.6.1 ipykernel==7.4.0 comm==0.2.3 nest-asyncio2==1.7.4
  ipython==9.18.1 ipython_pygments_lexers==1.1.1
  matplotlib-inline==0.2.2 pexpect==4.9.0 ptyprocess==0.7.0 prompt_toolkit==3.0.53
  wcwidth==0.9.4 stack_data==0.6.3 executing==2.3.0 asttokens==3.0.2 pure_eval==0.2.4
)
DATA_FILES=(cifar10_jpeg.tar.gz mnist.npz imdb_reviews_subset.tar.gz)

if [ "$MODE" = prepare ]; then
  exclude=$(git rev-parse --git-path info/exclude) || exit 1
  mkdir -p "$(dirname "$exclude")"
  for entry in /.whl/ /.gpu_data/; do
    grep -qxF "$entry" "$exclude" 2>/dev/null || echo "$entry" >>"$exclude"
  done
  rm -rf .whl && mkdir -p .whl .gpu_data
  "${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}" || exit 1
  data=${COURSE_DATA_DIR:-../shared/data}
  for f in "${DATA_FILES[@]}"; do
    cp -f "$data/$f" .gpu_data/ || { echo "error: $data/$f missing (set COURSE_DATA_DIR)"; exit 1; }
  done
  tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
  carried=$(du -cb .whl .gpu_data | tail -1 | cut -f1)
  echo "wheels: $(ls .whl | wc -l) files, $(du -sh .whl | cut -f1); data: $(du -sh .gpu_data | cut -f1)"
  echo "travels: $(( (tree + carried) / 1048576 )) MiB of 64 (working tree $(( tree / 1048576 )) MiB)"
  echo 'device run: command "bash benchmarks/gpu_check.sh", carry [".whl", ".gpu_data"], timeout_s 600'
  exit 0
fi

export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 GPU_CHECK_START=$START
unset COURSE_FAST

if [ "$MODE" = dry-run ]; then
  PY=${PYTHON:-}
  [ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/no_tf/tensorflow"  # the GPU machine has no TensorFlow: hide it
  echo 'raise ImportError("TensorFlow is hidden (gpu_check --dry-run simulates the GPU machine)")' \
    >"$tmp/no_tf/tensorflow/__init__.py"
  export PYTHONPATH="$tmp/no_tf:$PWD${PYTHONPATH:+:$PYTHONPATH}" JAX_PLATFORMS=cpu
  # Tiny runs are all compilation: XLA's unoptimised CPU code compiles in about 60 % of the time.
  export XLA_FLAGS="--xla_backend_optimization_level=0${XLA_FLAGS:+ $XLA_FLAGS}"
  export COURSE_CACHE=${COURSE_CACHE:-$tmp/cache}
  echo "dry run: wheel install skipped (this environment's packages), TensorFlow hidden"
  "$PY" benchmarks/gpu_check.py --dry-run --out "${OUT:-$tmp/out}" "$@"
  exit $?
fi

# On the GPU machine.
if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "error: no wheels in .whl/: run 'bash benchmarks/gpu_check.sh --prepare' on the course" \
       "machine first, then carry .whl and .gpu_data" >&2
  exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu_data ] && export COURSE_DATA_DIR=$PWD/.gpu_data
export COURSE_CACHE=${COURSE_CACHE:-/tmp/course_cache}
python3 benchmarks/gpu_check.py --out "${OUT:-$PWD/gpu_check_out}" "$@"
