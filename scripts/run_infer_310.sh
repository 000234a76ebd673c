#!/usr/bin/env bash
# Ascend 310 inference of an exported MindIR: preprocess -> build -> infer -> postprocess.
#
#   bash scripts/run_infer_310.sh MINDIR DATA_PATH DEVICE_ID [jpeg|bin]
#
# DATA_PATH: a folder of <class>/<image> (an ImageFolder split such as <imagenet>/val).
# jpeg (default): the C++ program decodes and preprocesses the images itself (as eval.py);
# bin: preprocess.py writes float32 inputs with eval.py's pipeline and the program reads them.
# Environment:
#   CONFIG         the training recipe (mean, std, eval_resize, image_size, num_classes);
#                  default configs/imagenet/acmix_resnet50.yaml
#   INFER_BACKEND  ascend (default): build and run ascend310_infer/out/main;
#                  python: run the Python twin infer_mindir.py on the local backend instead
#                  (same inputs, same output files; no build stage)
#   PYTHON         the Python interpreter (default python3)
# Everything is written to the current directory: preprocess_Result/, result_Files/,
# time_Result/ and one log per stage (preprocess.log, build.log, infer.log, acc.log).
# The first failing stage stops the script with its log's tail and exit code 1.
set -uo pipefail
usage="usage: bash scripts/run_infer_310.sh MINDIR DATA_PATH DEVICE_ID [jpeg|bin]"
if [ $# -lt 3 ] || [ $# -gt 4 ]; then echo "$usage" >&2; exit 2; fi
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)  # also when called through a symlink
abspath() { (cd "$(dirname "$1")" 2>/dev/null && echo "$(pwd)/$(basename "$1")"); }
mindir=$(abspath "$1"); data=$(abspath "$2"); device_id=$3; route=${4:-jpeg}
config=${CONFIG:-$repo/configs/imagenet/acmix_resnet50.yaml}
backend=${INFER_BACKEND:-ascend}
python=${PYTHON:-python3}
if [ -z "$mindir" ] || [ ! -f "$mindir" ]; then echo "error: MindIR $1 does not exist" >&2; exit 2; fi
if [ -z "$data" ] || [ ! -d "$data" ]; then echo "error: DATA_PATH $2 is not a directory" >&2; exit 2; fi
if ! [[ "$device_id" =~ ^[0-9]+$ ]]; then echo "error: DEVICE_ID must be a number, got '$device_id'" >&2; exit 2; fi
if [ "$route" != jpeg ] && [ "$route" != bin ]; then echo "error: the input format is jpeg or bin, got '$route'" >&2; exit 2; fi
if [ "$backend" != ascend ] && [ "$backend" != python ]; then echo "error: INFER_BACKEND is ascend or python, got '$backend'" >&2; exit 2; fi

stage() {  # stage NAME LOG COMMAND...: run, stop the script on failure
    local name=$1 log=$2; shift 2
    echo "== $name (log: $log)"
    if ! "$@" > "$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "error: stage '$name' failed; see $log" >&2
        exit 1
    fi
}

export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
pre_args=(--config "$config" --data-path "$data" --output-path preprocess_Result)
if [ "$route" = jpeg ]; then pre_args+=(--labels-only); fi
stage preprocess preprocess.log "$python" "$repo/preprocess.py" "${pre_args[@]}"
rm -rf result_Files time_Result
input=$data
if [ "$route" = bin ]; then input=preprocess_Result/img_data; fi
# shellcheck disable=SC2207
infer_args=(--mindir_path="$mindir" --input_path="$input" --input_format="$route" --device_id="$device_id"
            $(cat preprocess_Result/infer_args.txt))
if [ "$backend" = ascend ]; then
    stage build build.log bash "$repo/ascend310_infer/build.sh"
    stage infer infer.log "$repo/ascend310_infer/out/main" "${infer_args[@]}"
else
    stage infer infer.log "$python" "$repo/infer_mindir.py" "${infer_args[@]}"
fi
stage postprocess acc.log "$python" "$repo/postprocess.py" --result-path result_Files \
    --label-path preprocess_Result/label.json
cat time_Result/test_perform_static.txt
tail -n 2 acc.log
