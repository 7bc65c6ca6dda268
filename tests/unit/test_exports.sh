#!/bin/sh
# The archive functions link (functions/sdk/export/libfngate.a) defines, as
# global symbols, exactly the fn_ functions the public headers declare, and
# nothing else: every internal is local.  fngate-spare exports exactly the
# same names.  Run by make check from the build directory.
set -eu
lib=functions/sdk/export/libfngate.a
syms=$lib.syms
[ -f "$lib" ] || { echo "FAIL: $lib not built"; exit 1; }
want=$(sort -u "$syms")

# same_as_headers WHAT NAMES: fails unless NAMES (sorted, one a line) are the
# public headers' fn_ names.
same_as_headers() {
    [ "$2" != "$want" ] || return 0
    echo "FAIL: the fn_ names $1 defines for others differ from the public headers' fn_ names"
    echo "--- only in $1 (internals a function's own names would bind to):"
    printf '%s\n' "$2" | comm -23 - "$syms"
    echo "--- only in the headers (declared, never defined: a function calling one cannot link or load):"
    printf '%s\n' "$2" | comm -13 - "$syms"
    exit 1
}

got=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u)
same_as_headers "$lib" "$got"
# The internals those are kept apart from: every other global the SDK's
# objects define carries the prefix the SDK reserves, fnsdk_, but for the one
# gateway module it shares with the pool (poolwire_).  A new internal named
# fn_... would read as public API and take a name an author may use.
objs=functions/sdk/.libs/libfngate.a
[ -f "$objs" ] || { echo "FAIL: $objs not built"; exit 1; }
odd=$(nm -g --defined-only "$objs" | awk 'NF == 3 { print $3 }' | sort -u |
    comm -23 - "$syms" | grep -v -e '^fnsdk_' -e '^poolwire_' || true)
if [ -n "$odd" ]; then
    echo "FAIL: SDK internals outside the reserved prefix fnsdk_:"
    printf '%s\n' "$odd"
    exit 1
fi
echo "PASS: $(printf '%s\n' "$got" | wc -l) public symbols, no internals exported, every internal fnsdk_"

# fngate-spare exports the SDK to the handler.so it dlopen()s: exactly the
# public API, the same list as the archive's.  A name in its dynamic symbol
# table is what a function's own global of that name binds to once loaded
# by a spare (the executable comes first in the lookup), so an exported
# internal (fnsdk_buf_init, fnsdk_uri_decode_path ...) or the spare's own assign_
# or childsetup_ code would take the place of the function's definition
# there, and only there: the exec'd handler keeps its own.
spare=gateway/fngate-spare
[ -x "$spare" ] || { echo "FAIL: $spare not built"; exit 1; }
dyn=$(nm -D --defined-only "$spare" | awk 'NF == 3 { print $3 }' | grep -v '@' | sort -u)
leaked=$(printf '%s\n' "$dyn" | grep -v '^fn_' |
    grep -v -e '^__' -e '^_[A-Z]' | # reserved: the C library's, the linker's, a sanitizer's
    grep -vx -e data_start -e _edata -e _end -e _start || true)
if [ -n "$leaked" ]; then
    echo "FAIL: $spare exports non-SDK names to every function's shared object:"
    printf '%s\n' "$leaked"
    exit 1
fi
got=$(printf '%s\n' "$dyn" | grep '^fn_' || true)
same_as_headers "$spare" "$got"
echo "PASS: $spare exports the $(printf '%s\n' "$got" | wc -l) public fn_ names and no other"
