#!/usr/bin/env bash
# test_architecture.sh -- docs/ARCHITECTURE.md's concern table names every
# source file of lib/ and services/*/ and no file that is gone, and holds no
# benchmark figures (scripts/check-architecture); and that check can fail.
# Usage: test_architecture.sh REPO_ROOT
. "$(dirname "$0")/../lib/common.sh"
ROOT=$1

python3 "$ROOT/scripts/check-architecture" "$ROOT" >"$TEST_TMP/ok.out" 2>&1
RC=$?
cat "$TEST_TMP/ok.out"
check_eq "the concern table accounts for every source file (scripts/check-architecture)" 0 $RC

# The same tree with a table that forgets a file, names a gone one and quotes a figure.
mkdir -p "$TEST_TMP/root/docs"
for d in lib services tools tests; do ln -s "$ROOT/$d" "$TEST_TMP/root/$d"; done
sed 's/ (`crc32c.c`, CRC-32C)/ (CRC-32C)/; s/(`influx_time.c`)/(`influx_time.c`, `influx_gone.c`: 67.5 MB)/' \
  "$ROOT/docs/ARCHITECTURE.md" >"$TEST_TMP/root/docs/ARCHITECTURE.md"
python3 "$ROOT/scripts/check-architecture" "$TEST_TMP/root" >"$TEST_TMP/bad.out" 2>&1
check_eq "a table that forgets a file fails" 1 $?
check "  ... naming the file" grep -q 'crc32c.c is not named' "$TEST_TMP/bad.out"
check "  ... and the file that is gone" grep -q 'names influx_gone.c, which no source file matches' "$TEST_TMP/bad.out"
check "  ... and the figure" grep -q 'benchmark figure.*67.5 MB' "$TEST_TMP/bad.out"
finish
