#!/usr/bin/env bash
# Build ascend310_infer/out/main against MindSpore Lite (preferred) or MindSpore.
#   bash build.sh            (run from anywhere)
# Where the install is found, first match wins:
#   1. $LITE_HOME: an unpacked mindspore-lite-<version>-linux-<arch> package (runtime/include, runtime/lib)
#   2. $MINDSPORE_HOME: a MindSpore install directory with include/api and lib/libmindspore.so
#   3. the installed mindspore_lite python package, then the mindspore one (pip show)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

find_pip_package() {  # prints the package directory of pip package $1, if installed
    local location
    location=$(python3 -m pip show "$1" 2>/dev/null | sed -n 's/^Location: //p') || true
    if [ -n "$location" ] && [ -d "$location/$2" ]; then echo "$location/$2"; fi
}

ms_home=""; ms_lite=ON
if [ -n "${LITE_HOME:-}" ]; then
    ms_home=$LITE_HOME
elif [ -n "${MINDSPORE_HOME:-}" ]; then
    ms_home=$MINDSPORE_HOME; ms_lite=OFF
else
    lite=$(find_pip_package mindspore_lite mindspore_lite)
    if [ -n "$lite" ] && [ -f "$lite/include/api/model.h" ]; then
        ms_home=$lite; ms_lite=OFF
    else
        ms=$(find_pip_package mindspore mindspore)
        if [ -n "$ms" ] && [ -f "$ms/include/api/model.h" ]; then ms_home=$ms; ms_lite=OFF; fi
    fi
fi
if [ -z "$ms_home" ]; then
    echo "error: no MindSpore Lite / MindSpore C++ API found: set LITE_HOME to an unpacked" \
         "mindspore-lite package (https://www.mindspore.cn/lite) or MINDSPORE_HOME" >&2
    exit 1
fi
if [ "$ms_lite" = ON ] && [ ! -f "$ms_home/runtime/include/api/model.h" ]; then
    echo "error: $ms_home/runtime/include/api/model.h not found: LITE_HOME must be an unpacked" \
         "mindspore-lite-<version>-linux-<arch> package" >&2
    exit 1
fi
echo "building against $ms_home (lite=$ms_lite)"
cmake -S . -B build -DMS_HOME="$ms_home" -DMS_LITE="$ms_lite" -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
test -x out/main
echo "built $here/out/main"
