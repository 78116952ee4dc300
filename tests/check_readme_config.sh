#!/usr/bin/env bash
# The README's config reference must be exactly what `sluice config --reference` prints
# (the settings table is the single source of truth).
set -euo pipefail
sluice=$1 readme=$2
diff -u <(sed -n '/^<!-- generated: sluice config --reference/,/^<!-- end of generated reference -->/p' "$readme" | sed '1d;$d') \
        <("$sluice" config --reference) && echo "README config reference is up to date"
