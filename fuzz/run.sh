#!/bin/sh
# The long fuzz run (`make fuzz`): builds every target with coverage
# instrumentation (cargo-fuzz, libFuzzer, no sanitizer: works on stable
# Rust), then fuzzes each for FUZZ_TIME seconds, FUZZ_PARALLEL at a time,
# and prints one line per target: seconds, executions, crashes.
#
# New corpus entries go to $FUZZ_TARGET_DIR/corpus/TARGET (the committed
# fuzz/corpus/TARGET is read, not written); crashes to
# $FUZZ_TARGET_DIR/artifacts/TARGET/. See docs/fuzzing.md.
set -eu
cd "$(dirname "$0")"
FUZZ_TIME=${FUZZ_TIME:-600}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-../target/fuzz}
FUZZ_TARGETS=${FUZZ_TARGETS:-"verify manifest host_toml twilio_form admin_query guest_response"}
case $FUZZ_TARGET_DIR in /*) ;; *) FUZZ_TARGET_DIR=$(pwd)/$FUZZ_TARGET_DIR ;; esac
CARGO=${CARGO:-cargo}
NICE=${NICE:-nice -n 19}

$NICE $CARGO fuzz build -s none --target-dir "$FUZZ_TARGET_DIR"

one() {
    target=$1
    mkdir -p "$FUZZ_TARGET_DIR/corpus/$target" "$FUZZ_TARGET_DIR/artifacts/$target" "$FUZZ_TARGET_DIR/logs"
    log=$FUZZ_TARGET_DIR/logs/$target.log
    start=$(date +%s)
    status=0
    $NICE $CARGO fuzz run -s none --target-dir "$FUZZ_TARGET_DIR" "$target" \
        "$FUZZ_TARGET_DIR/corpus/$target" "corpus/$target" -- \
        -max_total_time="$FUZZ_TIME" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_TARGET_DIR/artifacts/$target/" \
        >"$log" 2>&1 || status=$?
    took=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crashes=$(find "$FUZZ_TARGET_DIR/artifacts/$target" -type f | wc -l)
    echo "$target: ${took}s, ${runs:-?} executions, $crashes crash file(s), exit $status (log $log)"
}

export FUZZ_TIME FUZZ_TARGET_DIR CARGO NICE
failed=0
running=0
for target in $FUZZ_TARGETS; do
    one "$target" >"$FUZZ_TARGET_DIR/$target.summary" &
    running=$((running + 1))
    if [ "$running" -ge "$FUZZ_PARALLEL" ]; then
        wait
        running=0
    fi
done
wait
for target in $FUZZ_TARGETS; do
    cat "$FUZZ_TARGET_DIR/$target.summary"
    grep -q " 0 crash file(s), exit 0 " "$FUZZ_TARGET_DIR/$target.summary" || failed=1
done
exit $failed
