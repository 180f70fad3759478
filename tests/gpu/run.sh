#!/bin/sh
# run.sh - the GPU checks and the GPU bench in one go, on a machine with an
# NVIDIA GPU, its driver, CUDA (nvcc) and cuDNN; a bare Debian 12 will do.
#
#   sh tests/gpu/run.sh            from the repository root (or anywhere)
#
# 1. packages: the few Debian packages this needs (a compiler, pkg-config,
#    OpenBLAS, cJSON, cmocka, python3), installed with apt-get when run as
#    root and missing (else it prints the command and stops). Not
#    scripts/deps.sh: that one also installs PostgreSQL, Chromium and
#    Node for the service and its dashboard, which none of this uses.
# 2. says what it found (nvidia-smi, nvcc, cuDNN, torch); CUDA_ARCHS
#    defaults to the GPU's own compute capability (one architecture
#    builds in half the time; set it to override);
# 3. builds the CNN engine with the CUDA backend (make CUDA=1: libnn.a
#    and libnncuda.a only) and links the GPU test, the device test, the
#    host-side checks of the backend's cuBLAS arguments and kernel rules,
#    and the CPU op tests with a short command line of its own (the GPU
#    test also compiles the cnn and darts families' few sources);
# 4. asks the built test whether a GPU is visible: if none is, it stops
#    there with the reason (everything built, nothing run on a GPU);
# 5. runs tests/unit/test_nn_cuda with PODIUM_REQUIRE_GPU=1 (every op
#    forward and backward against the CPU backend, TF32 cases, a few
#    DARTS training steps on both, the "cnn" and "darts" families trained
#    on "cpu" and on "cuda" with their losses, predictions and reported
#    device compared, "auto" picking the GPU), then test_nn_device,
#    test_nn_gemm_map, test_nn_cuda_math, test_nn_ops and test_nn_torch;
# 6. runs bench/gpu_step.py: DARTS search-step throughput and the
#    retrained network's epoch time, ours on CUDA (fp32, TF32) beside
#    PyTorch with cuDNN when torch has CUDA (else that column says why),
#    and ours on the CPU for scale. GPU_BENCH_STEPS (30) sets the timed
#    steps; GPU_BENCH=0 skips the bench.
#
# Prints everything, then a summary (one line per step); exits non-zero
# when anything failed, no GPU included. Knobs: CUDA_HOME
# (/usr/local/cuda), CUDA_ARCHS (e.g. "80 90").
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export CUDA_HOME
jobs=$(nproc 2>/dev/null || echo 4)
summary=""
failures=0
note() { summary="$summary$(printf '  %-28s %s' "$1" "$2")
"; }
failed() { note "$1" "FAILED: $2"; failures=$((failures + 1)); echo "gpu: FAILED: $1: $2"; }
step() { echo; echo "=== $* ==="; }
finish() {
    echo
    echo "=== summary ==="
    printf '%s' "$summary"
    if [ "$failures" -gt 0 ]; then
        echo "gpu: FAILED ($failures)"
        exit 1
    fi
    echo "gpu: all GPU checks passed (bench figures above)"
    exit 0
}

step "packages"
PACKAGES="build-essential pkg-config libopenblas-dev libcjson-dev libcmocka-dev python3"
if command -v dpkg-query >/dev/null 2>&1; then
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        echo "all there:" $PACKAGES
        note "packages" "ok"
    elif [ "$(id -u)" -eq 0 ]; then
        echo "installing:$missing"
        if DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; then
            note "packages" "installed$missing"
        else
            failed "packages" "apt-get install$missing"
            finish
        fi
    else
        failed "packages" "missing$missing (run as root, or: sudo apt-get install -y$missing)"
        finish
    fi
else
    echo "no dpkg: not a Debian system; assuming a compiler, pkg-config, OpenBLAS, cJSON and cmocka"
    note "packages" "not checked (no dpkg)"
fi

step "what is here"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || true
else
    echo "nvidia-smi: not found"
fi
nvcc=$(command -v nvcc 2>/dev/null || { [ -x "$CUDA_HOME/bin/nvcc" ] && echo "$CUDA_HOME/bin/nvcc"; })
if [ -z "$nvcc" ]; then
    failed "nvcc" "not found (PATH or $CUDA_HOME/bin): cannot build the CUDA backend"
    finish
fi
"$nvcc" --version | tail -2
grep -h "define CUDNN_M[AI][JN]OR " "$CUDA_HOME"/include/cudnn_version*.h /usr/include/cudnn_version*.h \
    /usr/include/*-linux-gnu/cudnn_version*.h 2>/dev/null | head -2
echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null ||
    echo "torch: not importable (the PyTorch side of the bench will be skipped)"
if [ -z "${CUDA_ARCHS:-}" ] && command -v nvidia-smi >/dev/null 2>&1; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    case "$cap" in
        [1-9][0-9] | [1-9][0-9][0-9]) CUDA_ARCHS=$cap ;;
    esac
fi
archs=${CUDA_ARCHS:-80 90}
echo "CUDA_ARCHS=$archs"

step "build (make CUDA=1, CNN engine only)"
if ! make --no-print-directory -j"$jobs" CUDA=1 NVCC="$nvcc" CUDA_ARCHS="$archs" \
    build/release/libnn.a build/release/libnncuda.a; then
    failed "build" "make CUDA=1 (the output above says why)"
    finish
fi
note "build" "ok (CUDA_ARCHS=$archs)"
libs=$(pkg-config --libs openblas libcjson cmocka 2>/dev/null || echo "-lopenblas -lcjson -lcmocka")
cflags=$(pkg-config --cflags openblas libcjson cmocka 2>/dev/null || true)
libdir="$CUDA_HOME/lib64"
[ -d "$libdir" ] || libdir="$CUDA_HOME/lib"
mkdir -p build/gpu
# what the families need besides libnn.a (not the server's libraries)
family_src="trainers/cnn.c trainers/cnnnet.c trainers/darts.c trainers/params.c trainers/rng.c
            trainers/buf.c trainers/cv.c lib/genotype.c lib/utf8.c"
tests="test_nn_cuda test_nn_device test_nn_gemm_map test_nn_cuda_math test_nn_ops test_nn_torch"
linked=0
for t in $tests; do
    echo "  LD      build/gpu/$t"
    extra=""
    [ "$t" = test_nn_cuda ] && extra=$family_src
    rm -f "build/gpu/$t"
    # shellcheck disable=SC2086
    if cc -O2 -g -std=c11 -D_GNU_SOURCE -I. $cflags -o "build/gpu/$t" "tests/unit/$t.c" $extra \
        tests/support/darts_net.c build/release/libnn.a build/release/libnncuda.a $libs \
        -L"$libdir" -Wl,-rpath,"$libdir" -lcudnn -lcublas -lcudart -lstdc++ -lpthread -lm; then
        linked=$((linked + 1))
    else
        failed "link $t" "cc (the output above says why)"
    fi
done
[ "$linked" -gt 0 ] && note "link" "$linked test programs"

step "is a GPU visible?"
if [ ! -x build/gpu/test_nn_cuda ]; then
    failed "GPU" "build/gpu/test_nn_cuda was not linked"
    finish
fi
if ! why=$(build/gpu/test_nn_cuda --probe 2>&1); then
    echo "$why"
    failed "GPU" "none visible: ${why#test_nn_cuda: } (everything built; nothing ran on a GPU)"
    finish
fi
echo "$why"
note "GPU" "${why#test_nn_cuda: }"

step "tests"
for t in $tests; do
    [ -x "build/gpu/$t" ] || continue
    echo "--- $t"
    start=$(date +%s)
    PODIUM_REQUIRE_GPU=1 PODIUM_SOURCE_DIR="$root" "build/gpu/$t" >"build/gpu/$t.log" 2>&1
    rc=$?
    cat "build/gpu/$t.log"
    secs=$(( $(date +%s) - start ))
    ok=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "build/gpu/$t.log" | tail -1)
    bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "build/gpu/$t.log" | tail -1)
    skip=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:/\1/p' "build/gpu/$t.log" | tail -1)
    echo "--- $t: exit $rc, ${secs}s"
    if [ "$rc" -eq 0 ] && [ -z "$bad" ] && [ -z "$skip" ]; then
        note "$t" "passed ${ok:-0} (${secs}s)"
    else
        failed "$t" "exit $rc, ${ok:-0} passed, ${bad:-0} failed, ${skip:-0} skipped (${secs}s)"
    fi
done

if [ "${GPU_BENCH:-1}" != "0" ]; then
    step "bench (bench/gpu_step.py)"
    start=$(date +%s)
    if python3 bench/gpu_step.py "${GPU_BENCH_STEPS:-30}"; then
        note "bench" "ok ($(( $(date +%s) - start ))s; figures above)"
    else
        failed "bench" "bench/gpu_step.py (the output above says why)"
    fi
else
    note "bench" "skipped (GPU_BENCH=0)"
fi
finish
