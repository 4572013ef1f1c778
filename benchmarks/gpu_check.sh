#!/usr/bin/env bash
# The one prepared GPU session for issue 14 (about 8 minutes): parity of every network and precision on the
# goldens, DFDNet K=512 memory vs batch, network throughput, then the end-to-end evaluate benchmark.
# Results (JSON + logs) go under $OUT (default ./gpu_check_out). Each step has its own timeout; a step that
# fails or times out does not stop the next one. Exit status: 0 when every step succeeded and parity passed.
#   OUT=/some/dir CELEBREF_GOLDEN_DIR=/path/to/shared/golden bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
step() {  # step NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  echo "== $name (timeout ${secs}s)"
  timeout --kill-after=10 "$secs" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc in $((SECONDS - t0))s"; tail -n 25 "$OUT/$name.log"
  [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" >>"$OUT/gpu.txt" 2>&1
step parity 200 python benchmarks/gpu_check.py parity --out "$OUT/parity.json"
step dfdnet_k512 80 python benchmarks/gpu_check.py dfdnet-k512 --batches 1,8,32 --out "$OUT/dfdnet_k512.json"
step throughput 100 python benchmarks/gpu_check.py throughput --batch 32 --precisions fp32,tf32,bf16 --out "$OUT/throughput.json"
step evaluate 120 python benchmarks/bench_evaluate.py --device cuda --n 256 --batch-size 32 --precision bf16 \
  --dfdnet-k 512 --json "$OUT/bench_evaluate.json"
echo "results in $OUT (status $status)"
exit $status
