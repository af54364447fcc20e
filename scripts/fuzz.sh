#!/usr/bin/env bash
# fuzz.sh [PACKAGES...] runs every Fuzz target in the packages (default ./...) for
# $FUZZTIME (default 10s) each.
# `go test -fuzz` takes one target in one package at a time, so list them first:
# `go test -list` prints a package's matching names, then its "ok <pkg>" line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

(($# > 0)) || set -- ./...
list=$("$GO" test -list '^Fuzz' "$@") # fails, and so does this script, if a package does not build
targets=()
names=()
while IFS= read -r line; do
	case $line in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for n in "${names[@]+"${names[@]}"}"; do targets+=("$pkg $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$list"

if ((${#targets[@]} == 0)); then
	echo "fuzz: no Fuzz targets found"
	exit 0
fi
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "=== fuzz $pkg $name ($FUZZTIME)"
	"$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"
done
echo "fuzz: ${#targets[@]} target(s) passed"
