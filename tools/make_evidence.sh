#!/usr/bin/env bash
# Re-measures every figure the README and the issue notes quote, with the shipped models, into docs/.
# Needs ../shared/data, the baselines extra (dlib) and the openvino extra for engines.py. The screenshot uses xvfb
# (apt: xvfb libxcb-cursor0) where it is installed, else Qt's offscreen platform. Accuracy is measured on ONNX Runtime (float32), as every earlier figure was;
# engines.py scores OpenVINO's bfloat16 beside it, and speed.py times both.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
mkdir -p docs/benchmarks
sdfl occlusion --data $data/300w/afw --format 300w --out docs/occlusion --parts --seed 0 --engine onnxruntime | tee docs/benchmarks/occlusion.txt
python benchmarks/accuracy.py --data $data/300w/afw --engine onnxruntime | tee docs/benchmarks/accuracy.txt
python benchmarks/speed.py --frames 1000 --repeats 150 | tee docs/benchmarks/speed.txt
python benchmarks/engines.py | tee docs/benchmarks/engines.txt
python benchmarks/jitter.py | tee docs/benchmarks/jitter.txt
python benchmarks/redetect.py | tee docs/benchmarks/redetect.txt
if command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1400x900x24" sdfl gui --source demo --frames 90 --screenshot docs/screenshot.png
else
  QT_QPA_PLATFORM=offscreen sdfl gui --source demo --frames 90 --screenshot docs/screenshot.png
fi
