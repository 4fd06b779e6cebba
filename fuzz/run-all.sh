#!/bin/sh
# Runs every fuzz target, one after another, each from its committed seeds (seeds/<target>/) into its working corpus
# (corpus/<target>/, ignored by git). Stops at the first target that finds a crash (its input is in artifacts/).
#
#   ./run-all.sh                  # each target for 60 seconds
#   ./run-all.sh 600              # each target for 600 seconds
#   RUNS=10000000 ./run-all.sh    # each target for 10^7 executions (no time limit)
#   ./run-all.sh 60 ciphertext_blob mesh_message   # only these targets
#
# Environment: CARGO_TARGET_DIR (default: target/ here), FUZZ_NICE (default 19), MAX_LEN (default 65536),
# VHSM_FUZZ_TOLERATE (findings to tolerate, see README.md).
set -eu
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-"templates mechanism_params client_request client_response node_request node_response mesh_message ciphertext_blob backup_header sealed_record unseal_envelope store_record protocol_messages"}
if [ -n "${RUNS:-}" ]; then LIMIT="-runs=$RUNS"; else LIMIT="-max_total_time=$SECONDS_EACH"; fi
for target in $TARGETS; do
    echo "=== $target"
    mkdir -p "corpus/$target"
    nice -n "${FUZZ_NICE:-19}" cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        "$LIMIT" -max_len="${MAX_LEN:-65536}" -jobs=1 -workers=1 -print_final_stats=1
done
