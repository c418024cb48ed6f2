#!/usr/bin/env bash
# The main job, on a fresh machine: install if needed, write the embedded demo data sets, then train
# and test VMamba on each task (classification, detection, segmentation) on the CPU.
#
#   bash tools/demo.sh                 # all three tasks
#   bash tools/demo.sh classification  # or any subset of: classification detection segmentation
#
# Re-running is cheap: finished runs are resumed (nothing left to train) and only tested again.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/install.sh
py=.venv/bin/python
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(classification detection segmentation)

run_demo() {  # config, dataset-converter arguments...
  local config=$1; shift
  local name work_dir
  name=$(basename "$config" .py)
  work_dir=work_dirs/$name
  "$py" "$@"
  "$py" tools/train.py "$config" --work-dir "$work_dir" --resume
  "$py" tools/test.py "$config" "$(cat "$work_dir/last_checkpoint")" --work-dir "$work_dir/test"
}

for task in "${tasks[@]}"; do
  case $task in
    classification) run_demo configs/classification/vmamba-demo_digits.py tools/dataset_converters/make_digits_demo.py ;;
    detection) run_demo configs/detection/mask-rcnn_vmamba-demo_shapes.py tools/dataset_converters/make_shapes_demo.py coco ;;
    segmentation) run_demo configs/segmentation/upernet_vmamba-demo_shapes.py tools/dataset_converters/make_shapes_demo.py ade ;;
    *) echo "unknown task '$task': choose from classification detection segmentation" >&2; exit 2 ;;
  esac
done
