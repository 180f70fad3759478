#!/bin/sh
# run.sh - the GPU checks and the GPU bench in one go, on a machine with an
# NVIDIA GPU, its driver, CUDA (nvcc) and cuDNN. No network needed.
#
#   sh tests/gpu/run.sh            from the repository root (or anywhere)
#
# 1. says what it found (nvidia-smi, nvcc, cuDNN, torch);
# 2. builds the CNN engine with the CUDA backend (make CUDA=1: libnn.a and
#    libnncuda.a only; no PostgreSQL or server packages needed) and links
#    the GPU test, the device test and the CPU op tests with a short
#    command line of its own (openblas, cJSON, cmocka, CUDA; the GPU test
#    also compiles the cnn and darts families' few sources);
# 3. runs tests/unit/test_nn_cuda with PODIUM_REQUIRE_GPU=1 (every op
#    forward and backward against the CPU backend, TF32 cases, a few
#    DARTS training steps on both, the "cnn" and "darts" families trained
#    on "cpu" and on "cuda" with their losses, predictions and reported
#    device compared, "auto" picking the GPU; a missing GPU fails here
#    instead of skipping), then test_nn_device, test_nn_ops and
#    test_nn_torch;
# 4. runs bench/gpu_step.py: DARTS search-step throughput and the
#    retrained network's epoch time, ours on CUDA (fp32, TF32) beside
#    PyTorch with cuDNN when torch has CUDA (else that column says why),
#    and ours on the CPU for scale. GPU_BENCH_STEPS (30) sets the timed
#    steps; GPU_BENCH=0 skips the bench.
#
# Prints everything; exits non-zero when a build, a test or the bench
# fails. Knobs: CUDA_HOME (/usr/local/cuda), CUDA_ARCHS (make's: "80 90";
# e.g. CUDA_ARCHS=90 on an H100 builds faster).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export CUDA_HOME
jobs=$(nproc 2>/dev/null || echo 4)
failures=""
fail() { failures="$failures $1"; echo "gpu: FAILED: $1"; }
step() { echo; echo "=== $* ==="; }

step "what is here"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "nvidia-smi: not found"
fi
nvcc=$(command -v nvcc 2>/dev/null || { [ -x "$CUDA_HOME/bin/nvcc" ] && echo "$CUDA_HOME/bin/nvcc"; })
if [ -z "$nvcc" ]; then
    echo "gpu: no nvcc (PATH or $CUDA_HOME/bin): cannot build the CUDA backend"
    exit 1
fi
"$nvcc" --version | tail -2
grep -h "define CUDNN_M[AI][JN]OR " "$CUDA_HOME"/include/cudnn_version*.h /usr/include/cudnn_version*.h 2>/dev/null | head -2
echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null ||
    echo "torch: not importable (the PyTorch side of the bench will be skipped)"

step "build (make CUDA=1, CNN engine only)"
if ! make --no-print-directory -j"$jobs" CUDA=1 NVCC="$nvcc" build/release/libnn.a build/release/libnncuda.a; then
    fail "make"
    echo "gpu: failed:$failures"
    exit 1
fi
libs=$(pkg-config --libs openblas libcjson cmocka 2>/dev/null || echo "-lopenblas -lcjson -lcmocka")
cflags=$(pkg-config --cflags openblas libcjson cmocka 2>/dev/null || true)
libdir="$CUDA_HOME/lib64"
[ -d "$libdir" ] || libdir="$CUDA_HOME/lib"
mkdir -p build/gpu
# what the families need besides libnn.a (not the server's libraries)
family_src="trainers/cnn.c trainers/cnnnet.c trainers/darts.c trainers/params.c trainers/rng.c
            trainers/buf.c trainers/cv.c lib/genotype.c lib/utf8.c"
for t in test_nn_cuda test_nn_device test_nn_ops test_nn_torch; do
    echo "  LD      build/gpu/$t"
    extra=""
    [ "$t" = test_nn_cuda ] && extra=$family_src
    # shellcheck disable=SC2086
    if ! cc -O2 -g -std=c11 -D_GNU_SOURCE -I. $cflags -o "build/gpu/$t" "tests/unit/$t.c" $extra \
        tests/support/darts_net.c build/release/libnn.a build/release/libnncuda.a $libs \
        -L"$libdir" -Wl,-rpath,"$libdir" -lcudnn -lcublas -lcudart -lstdc++ -lpthread -lm; then
        fail "link $t"
    fi
done

step "tests"
for t in test_nn_cuda test_nn_device test_nn_ops test_nn_torch; do
    [ -x "build/gpu/$t" ] || continue
    echo "--- $t"
    start=$(date +%s)
    PODIUM_REQUIRE_GPU=1 PODIUM_SOURCE_DIR="$root" "build/gpu/$t"
    rc=$?
    echo "--- $t: exit $rc, $(( $(date +%s) - start ))s"
    [ "$rc" -eq 0 ] || fail "$t"
done

if [ "${GPU_BENCH:-1}" != "0" ]; then
    step "bench (bench/gpu_step.py)"
    if command -v python3 >/dev/null 2>&1; then
        python3 bench/gpu_step.py "${GPU_BENCH_STEPS:-30}" || fail "bench"
    else
        echo "gpu: no python3; running build/gpu_step directly (no PyTorch column)"
        # shellcheck disable=SC2086
        cc -O2 -std=c11 -D_GNU_SOURCE -I. $cflags bench/gpu_step.c tests/support/darts_net.c \
            build/release/libnn.a build/release/libnncuda.a $libs -L"$libdir" -Wl,-rpath,"$libdir" \
            -lcudnn -lcublas -lcudart -lstdc++ -lpthread -lm -o build/gpu_step &&
            build/gpu_step --device cuda --mode search --steps "${GPU_BENCH_STEPS:-30}" &&
            build/gpu_step --device cuda --mode retrain --batch 96 --c 36 --cells 20 \
                --steps "${GPU_BENCH_STEPS:-30}" || fail "bench"
    fi
fi

echo
if [ -n "$failures" ]; then
    echo "gpu: FAILED:$failures"
    exit 1
fi
echo "gpu: all GPU tests passed (bench figures above)"
