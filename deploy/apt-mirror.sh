#!/bin/sh
# Prints the Debian archive address this machine's apt already uses for a
# suite, so that scripts never carry an archive address of their own.
#
#   sh deploy/apt-mirror.sh [SUITE]        default SUITE: bookworm
#
# Reads /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line
# format) and /etc/apt/sources.list.d/*.sources (deb822), and prints the
# first URI of an enabled `deb` entry for SUITE with the `main` component.
# $CERTVAL_DEBIAN_MIRROR, when set, is printed instead. Exits 1 with a
# message on stderr when no entry matches. POSIX sh and awk only: it also
# runs inside a minbase build stage.
set -eu
suite=${1:-bookworm}
if [ -n "${CERTVAL_DEBIAN_MIRROR:-}" ]; then
    echo "$CERTVAL_DEBIAN_MIRROR"
    exit 0
fi
root=${APT_SOURCES_ROOT:-/etc/apt}

uri=""
for f in "$root/sources.list" "$root"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [opts] URI SUITE COMPONENT...
    uri=$(awk -v suite="$suite" '
        { sub(/#.*/, "") }
        $1 != "deb" { next }
        {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) != suite) next
            for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
        }' "$f")
    [ -n "$uri" ] && break
done
if [ -z "$uri" ]; then
    for f in "$root"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$suite" '
            function has(list, word,    n, a, k) {
                n = split(list, a, /[ \t]+/)
                for (k = 1; k <= n; k++) if (a[k] == word) return 1
                return 0
            }
            function flush() {
                if (has(types, "deb") && has(suites, suite) && has(comps, "main") &&
                    tolower(enabled) != "no" && uris != "") {
                    split(uris, u, /[ \t]+/); print u[1]; found = 1
                }
                types = suites = comps = uris = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); if (found) exit; next }
            {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "enabled") enabled = val
            }
            END { if (!found) flush() }' "$f")
        [ -n "$uri" ] && break
    done
fi
if [ -z "$uri" ]; then
    echo "apt-mirror.sh: no enabled 'deb' entry for suite $suite (component main) in" \
        "$root/sources.list or $root/sources.list.d/; set CERTVAL_DEBIAN_MIRROR" >&2
    exit 1
fi
echo "$uri"
