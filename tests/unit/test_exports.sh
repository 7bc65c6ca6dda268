#!/bin/sh
# The archive functions link (functions/sdk/export/libfngate.a) defines, as
# global symbols, exactly the fn_ functions the public headers declare, and
# nothing else: every internal is local.  Run by make check from the build
# directory.
set -eu
lib=functions/sdk/export/libfngate.a
syms=$lib.syms
[ -f "$lib" ] || { echo "FAIL: $lib not built"; exit 1; }
got=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u)
want=$(sort -u "$syms")
if [ "$got" != "$want" ]; then
    echo "FAIL: global definitions of $lib differ from the public headers' fn_ names"
    echo "--- only in the archive (internals leaking, or missing from the headers):"
    printf '%s\n' "$got" | comm -23 - "$syms"
    echo "--- only in the headers (declared, never defined):"
    printf '%s\n' "$got" | comm -13 - "$syms"
    exit 1
fi
for internal in fn_buf_init fn_frame_parse fn_loop_request_stop fn_req_new fn_res_write; do
    if printf '%s\n' "$got" | grep -qx "$internal"; then
        echo "FAIL: internal $internal is exported"
        exit 1
    fi
done
echo "PASS: $(printf '%s\n' "$got" | wc -l) public symbols, no internals exported"

# fngate-spare exports the SDK to the handler.so it dlopen()s, and nothing
# else: a non-fn_ name in its dynamic symbol table (its own assign_ or
# childsetup_ code, an internal linked into the SDK) would be what a
# function's own symbol of that name resolves to once loaded by a spare.
spare=gateway/fngate-spare
[ -x "$spare" ] || { echo "FAIL: $spare not built"; exit 1; }
leaked=$(nm -D --defined-only "$spare" | awk 'NF == 3 { print $3 }' |
    grep -v '@' | grep -v '^fn_' |
    grep -v -e '^__' -e '^_[A-Z]' | # reserved: the C library's, the linker's, a sanitizer's
    grep -vx -e data_start -e _edata -e _end -e _start || true)
if [ -n "$leaked" ]; then
    echo "FAIL: $spare exports non-SDK names to every function's shared object:"
    printf '%s\n' "$leaked"
    exit 1
fi
echo "PASS: $spare exports only fn_ names"
