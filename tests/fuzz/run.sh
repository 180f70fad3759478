#!/usr/bin/env bash
# tests/fuzz/run.sh - build every libFuzzer target in tests/fuzz/, seed its
# corpus and run it for a while. Not part of `make test`.
#
#   tests/fuzz/run.sh                    all targets, FUZZ_SECONDS (60) each
#   tests/fuzz/run.sh ingest modelfile   only these (names without fuzz_)
#   FUZZ_SECONDS=0 tests/fuzz/run.sh     regression only: run every seed
#                                        once (tests/fuzz/corpus/ included)
#
# Environment: FUZZ_SECONDS (default 60), CC (default clang), FUZZ_ARGS
# (extra libFuzzer flags, e.g. "-jobs=2 -workers=2"), and for the targets
# themselves FUZZ_VERBOSE=1 (print each outcome), FUZZ_LENIENT=1
# (modelfile: tolerate a model that writes more outputs than its schema
# says, to fuzz past that known bug), FUZZ_STRICT_PROBA=1 (modelfile:
# require predicted probabilities to be a distribution).
#
# tests/fuzz/corpus/<t>/ holds inputs that once crashed; while a bug is
# open its input makes the target fail at once, before any fuzzing.
#
# Layout (all under build/, ignored by git):
#   build/fuzz/fuzz_<t>              the binaries (ASan + UBSan + libFuzzer)
#   build/fuzz-corpus/<t>/           the working corpus: seeds made here, and
#                                    whatever the fuzzer adds (kept between runs)
#   build/fuzz-artifacts/<t>/        crash-*, leak-*, timeout-*, oom-* inputs
#   build/fuzz-logs/<t>.log          the fuzzer's output
# tests/fuzz/corpus/<t>/ holds small committed inputs (past findings); it is
# read as a second corpus folder and never written to.
#
# Exit status: 0 when every target ran clean; 1 when one crashed, leaked,
# timed out or failed a property (its reproducer path is printed; replay it
# with build/fuzz/fuzz_<t> FILE); 2 when a build failed.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=${CC:-clang}
BUILD=build/fuzz
CORPUS=build/fuzz-corpus
ARTIFACTS=build/fuzz-artifacts
LOGS=build/fuzz-logs
ALL_TARGETS="csv ingest imageset modelfile json_spec"
TARGETS=${*:-$ALL_TARGETS}

CFLAGS="-std=c11 -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

trainer_srcs() { ls trainers/[a-z]*.c | grep -v 'main\.c$'; }

# target -> "packages|sources|max_len"
target_spec() {
    case $1 in
    csv)       echo "libcjson|lib/csv.c lib/profile.c|4096" ;;
    ingest)    echo "libcjson zlib|server/ingest.c lib/gunzip.c lib/csv.c lib/profile.c|8192" ;;
    imageset)  echo "libcjson libarchive libpng libjpeg zlib|lib/imageset.c lib/image.c|65536" ;;
    modelfile) echo "libcjson openblas|$(trainer_srcs | tr '\n' ' ') lib/csv.c lib/log.c|16384" ;;
    json_spec) echo "libcjson openblas|$(trainer_srcs | tr '\n' ' ') lib/csv.c lib/log.c|4096" ;;
    *)         return 1 ;;
    esac
}

build() {
    local t=$1 spec pkgs srcs
    spec=$(target_spec "$t") || { echo "unknown target: $t" >&2; return 2; }
    pkgs=${spec%%|*}; srcs=${spec#*|}; srcs=${srcs%|*}
    echo "== build fuzz_$t"
    # shellcheck disable=SC2086
    $CC $CFLAGS $(pkg-config --cflags $pkgs) "tests/fuzz/fuzz_$t.c" $srcs \
        $(pkg-config --libs $pkgs) -lpthread -lm -o "$BUILD/fuzz_$t" || return 2
}

seed_modelfile() {
    local dir=$CORPUS/modelfile src=$CORPUS/.modelfile-src train=bin/podium-train
    [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
    if [ ! -x "$train" ]; then
        echo "   (no $train: modelfile starts from tests/fuzz/corpus only; run make first)"
        return 0
    fi
    mkdir -p "$src"
    local jobs="iris:species:linear:null iris:species:gbm:{\"n_estimators\":3,\"max_depth\":2}
iris:species:rf:{\"n_estimators\":2,\"max_depth\":3}
iris:species:extratrees:{\"n_estimators\":2,\"max_depth\":3}
iris:species:knn:null iris:species:nb:null iris:species:mlp:{\"max_iter\":5}
Servo:Class:linear:null Servo:Class:gbm:{\"n_estimators\":3,\"max_depth\":2}
Servo:Class:knn:null Servo:Class:mlp:{\"max_iter\":5}
HouseVotes84:Class:nb:null HouseVotes84:Class:linear:null"
    local j data target fam params name
    for j in $jobs; do
        IFS=: read -r data target fam params <<<"$j"
        name=$data-$fam
        printf '{"data":"%s","target":"%s","model":{"family":"%s","params":%s},"cv":{"folds":2,"seed":1},"artifact":"%s"}\n' \
            "$ROOT/tests/data/tabular/$data.csv" "$target" "$fam" "$params" "$ROOT/$src/$name.pdm" \
            >"$src/$name.json"
        if "$train" "$src/$name.json" >"$src/$name.log" 2>&1; then
            # selector 0x01: recompute the checksum (see fuzz_modelfile.c)
            { printf '\001'; cat "$src/$name.pdm"; } >"$dir/$name"
        else
            echo "   (podium-train failed for $name; see $src/$name.log)"
        fi
    done
}

seed_spec() {
    # Named seeds are (re)written every time; the fuzzer's own files stay.
    local dir=$CORPUS/json_spec d='"data":"d.csv","target":"y"'
    printf '{%s,"model":{"family":"gbm","params":{"n_estimators":10,"learning_rate":0.1,"max_depth":3,"max_leaves":0,"min_child_weight":1,"reg_lambda":1,"reg_alpha":0,"gamma":0,"subsample":0.8,"colsample_bytree":0.5,"max_bins":64,"early_stopping_rounds":5}},"cv":{"folds":5,"seed":3},"metric":"rmse","threads":2}' "$d" >"$dir/gbm"
    printf '{%s,"task":"classification","model":{"family":"rf","params":{"n_estimators":5,"criterion":"entropy","max_depth":null,"min_samples_split":2,"min_samples_leaf":1,"max_features":"sqrt","bootstrap":true,"max_samples":0.5,"oob_score":false}},"cv":{"holdout":0.2,"seed":1},"artifact":"out/m.pdm"}' "$d" >"$dir/rf"
    printf '{%s,"model":{"family":"extratrees","params":{"n_estimators":3,"max_features":0.5,"criterion":"squared_error"}},"task":"regression"}' "$d" >"$dir/extratrees"
    printf '{%s,"task":"regression","model":{"family":"mlp","params":{"hidden_layer_sizes":[8,4],"activation":"relu","alpha":0.0001,"batch_size":32,"learning_rate_init":0.001,"max_iter":3,"dropout":0.1,"early_stopping":true,"validation_fraction":0.1,"n_iter_no_change":3,"tol":0.0001,"shuffle":true}},"metric":"r2","extra":1}' "$d" >"$dir/mlp"
    printf '{%s,"model":{"family":"knn","params":{"n_neighbors":3,"weights":"distance"}},"metric":"log_loss"}' "$d" >"$dir/knn"
    printf '{%s,"model":{"family":"linear","params":{"penalty":"elasticnet","alpha":0.5,"max_iter":5,"tol":1e-4,"fit_intercept":true,"epsilon":0.1}},"metric":"f1_macro"}' "$d" >"$dir/linear"
    printf '{%s,"model":{"family":"nb","params":{"var_smoothing":1e-9,"fit_prior":false}},"metric":"balanced_accuracy","cv":{"folds":1000,"seed":18446744073709551615}}' "$d" >"$dir/nb"
}

seed() {
    local t=$1
    mkdir -p "$CORPUS/$t"
    case $t in
    csv|ingest|imageset)
        [ -n "$(ls -A "$CORPUS/$t" 2>/dev/null)" ] ||
            python3 tests/fuzz/make_seeds.py "$ROOT" "$CORPUS" || return 2 ;;
    modelfile) seed_modelfile ;;
    json_spec) seed_spec ;;
    esac
}

# The whole run is one function, read before it starts, so that editing
# this file while it runs does not change what runs.
main() {
    mkdir -p "$BUILD" "$CORPUS" "$ARTIFACTS" "$LOGS"
    for t in $TARGETS; do
        [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "no tests/fuzz/fuzz_$t.c" >&2; exit 2; }
        build "$t" || { echo "FAIL: build of fuzz_$t" >&2; exit 2; }
    done

    status=0
    for t in $TARGETS; do
        seed "$t"
        spec=$(target_spec "$t"); max_len=${spec##*|}
        dirs=("$CORPUS/$t")
        [ -d "tests/fuzz/corpus/$t" ] && dirs+=("tests/fuzz/corpus/$t")
        mkdir -p "$ARTIFACTS/$t"
        if [ "$SECONDS_EACH" -gt 0 ]; then
            mode=(-max_total_time="$SECONDS_EACH")
        else
            mode=(-runs=0)
        fi
        echo "== fuzz_$t (${SECONDS_EACH}s; corpus ${dirs[*]})"
        # shellcheck disable=SC2086
        "$BUILD/fuzz_$t" "${mode[@]}" -max_len="$max_len" -timeout=20 -rss_limit_mb=2560 \
            -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t/" ${FUZZ_ARGS:-} \
            "${dirs[@]}" >"$LOGS/$t.log" 2>&1
        rc=$?
        grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
            "$LOGS/$t.log" | sed 's/^/   /'
        grep -E '^#[0-9]+' "$LOGS/$t.log" | tail -1 | sed 's/^/   last: /'
        if [ $rc -ne 0 ]; then
            status=1
            echo "FAIL: fuzz_$t exited $rc; log $LOGS/$t.log"
            grep -E 'ERROR: |property failed|SUMMARY: ' "$LOGS/$t.log" | head -5 | sed 's/^/   /'
            grep -o 'Test unit written to .*' "$LOGS/$t.log" | sed 's/^Test unit written to /   reproducer: /'
            echo "   replay: $BUILD/fuzz_$t REPRODUCER; minimise: $BUILD/fuzz_$t -minimize_crash=1 -runs=10000 REPRODUCER"
        else
            echo "   ok ($LOGS/$t.log)"
        fi
    done
    return $status
}

main; exit
