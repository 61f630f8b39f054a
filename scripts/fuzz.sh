#!/bin/sh
# Runs every libFuzzer target of a VT_FUZZ build for SECONDS each, starting
# from generated seeds plus the corpus kept in build/fuzz-corpus/<target>.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -eu
build=$1
secs=$2
fail=0
for bin in "$build"/tests/fuzz/fuzz_*; do
	case "$bin" in *_seeds) continue ;; esac
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	corpus="$build/fuzz-corpus/$name"
	mkdir -p "$corpus" "$build/fuzz-crashes"
	"${bin}_seeds" --seeds "$corpus"
	echo "fuzz: $name for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=65536 \
		-artifact_prefix="$build/fuzz-crashes/$name-" -print_final_stats=1 \
		"$corpus" >"$build/fuzz-$name.log" 2>&1; then
		echo "fuzz: $name FAILED, see $build/fuzz-$name.log and $build/fuzz-crashes/"
		tail -40 "$build/fuzz-$name.log"
		fail=1
	else
		grep -E "stat::number_of_executed_units|cov:" "$build/fuzz-$name.log" | tail -2
	fi
done
exit $fail
