#!/usr/bin/env bash
# Put MindSpore's public C++ API headers (include/api, include/dataset, include/mindapi/base:
# the API that MindSpore Lite also ships in runtime/include) under .cache/mindspore_cpp_headers
# (git-ignored), so that tests/test_ascend310_infer.py can type-check ascend310_infer/ with
# g++ -fsyntax-only.
#
#   bash scripts/fetch_cpp_headers.sh [DEST]
#
# They come from the MindSpore 2.0.0 CPU wheel on PyPI (the last wheel that ships them;
# about 950 MB, downloaded to a temporary folder and deleted). MS_WHEEL=path/to/that.whl
# reuses a wheel already downloaded.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.cache/mindspore_cpp_headers}
if [ -f "$dest/include/api/model.h" ] && [ -f "$dest/include/dataset/execute.h" ]; then
    echo "headers already in $dest"; exit 0
fi
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wheel=${MS_WHEEL:-}
if [ -z "$wheel" ]; then
    "$python" -m pip download -q mindspore==2.0.0 --no-deps --python-version 3.9 \
        --only-binary=:all: --platform manylinux1_x86_64 -d "$tmp"
    wheel=$(ls "$tmp"/mindspore-2.0.0-*.whl)
fi
"$python" - "$wheel" "$dest.tmp" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith(".h") and name.startswith((
                "mindspore/include/api/", "mindspore/include/dataset/",
                "mindspore/include/mindapi/base/")):
            path = os.path.join(dest, name[len("mindspore/"):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(z.read(name))
            count += 1
with open(os.path.join(dest, "VERSION"), "w") as fh:
    fh.write(f"{os.path.basename(wheel)}: {count} headers\n")
print(f"{count} headers from {os.path.basename(wheel)}")
PY
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "headers in $dest"
