#!/bin/sh
# A/B of checkpoint formats 1 and 2 (docs/benchmarks.md, "What the model changes bought"): the same
# expert-only BHaRNet-E at paper width in the live configuration, exported by the last commit with
# format 1 and by this checkout, then timed side by side by `bharnet bench model --shipped A B`.
# Run from the repository root after `make setup`; everything goes under runs/bench_layouts/.
set -eu
out=runs/bench_layouts
python=$(pwd)/.venv/bin/python
mkdir -p "$out"
[ -d "$out/format1" ] || git worktree add --detach "$out/format1" a498a7b^
export_live='
import sys
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.export import export_onnx
from bharnet_ros.tools.bench import LIVE_INPUT, build_live_model
model = build_live_model("expert_only")
labels = [str(i) for i in range(model.config.num_classes)]
export_onnx(model, sys.argv[1], labels, PreprocessConfig(**LIVE_INPUT))
'
(cd "$out/format1" && PYTHONPATH=. "$python" -c "$export_live" ../format1_expert_only.onnx)
PYTHONPATH=. "$python" -c "$export_live" "$out/format2_expert_only.onnx"
PYTHONPATH=. "$python" -m bharnet_ros.cli bench model --variants expert_only --no-int8 --runs 30 \
  --torch-runs 6 --shipped "$out/format1_expert_only.onnx" "$out/format2_expert_only.onnx"
