#!/usr/bin/env bash
# The protobuf codec (core/pb, core/api_pb) against Python's protobuf runtime, at test
# time, so that a drift between api/destination.proto, the hand-written C tables and
# the committed golden vectors (test/unit/pb_vectors.h) is caught:
#  1. the vectors regenerated now from api/destination.proto are the committed ones
#     (byte for byte), and every committed vector still means the same to Python;
#  2. meshd's own encodings of the vector values (written by the unit test
#     "pb: vectors_encode_like_python" with MESHD_PB_DUMP set) decode in Python to
#     the very messages Python built.
# The unit tests (t_pb.c) check the other direction: meshd decodes Python's bytes to
# the same values. Needs /usr/bin/python3 with python3-protobuf and python3-grpc-tools.
. "$(dirname "$0")/lib.sh"
: "${UNIT_BIN:?set UNIT_BIN}"
cd "$(dirname "$0")/../.."
PY=${MESHD_PYTHON:-/usr/bin/python3}
GEN=test/unit/gen_pb_vectors.py

if ! "$PY" -c 'import google.protobuf, grpc_tools' 2>/dev/null; then
	echo "ok 1 - protobuf cross-check # SKIP $PY lacks python3-protobuf or python3-grpc-tools"
	exit 0
fi
tmp=$(mktemp -d /tmp/meshd-pb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

check "vectors regenerate from api/destination.proto" "$PY" "$GEN" --out "$tmp/pb_vectors.h"
check "regenerated vectors equal the committed test/unit/pb_vectors.h" \
	diff -u test/unit/pb_vectors.h "$tmp/pb_vectors.h"
check "committed vectors mean the same to Python (values, refusals)" \
	"$PY" "$GEN" --verify-header test/unit/pb_vectors.h
check "unit test writes meshd's encodings" \
	env MESHD_PB_DUMP="$tmp/dump" "$UNIT_BIN" "pb: vectors_encode_like_python"
check_out "meshd's encodings: one line per valid vector" '^[0-9]+$' \
	bash -c "test \$(wc -l < '$tmp/dump') = \$(grep -c ', 1 },' test/unit/pb_vectors.h) && wc -l < '$tmp/dump'"
check "Python decodes meshd's encodings to its own messages" \
	"$PY" "$GEN" --verify-dump "$tmp/dump"
# A corrupted encoding must be noticed (the check above can fail).
sed '1s/ \([0-9a-f][0-9a-f]\)/ ff\1/' "$tmp/dump" > "$tmp/dump.bad"
check_fails "a corrupted meshd encoding is reported" 1 "$PY" "$GEN" --verify-dump "$tmp/dump.bad"
