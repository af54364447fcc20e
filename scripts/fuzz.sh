#!/usr/bin/env bash
# fuzz.sh [PACKAGES...] runs every Fuzz target in the packages (default ./...) for
# $FUZZTIME (default 10s) each, $FUZZJOBS targets at a time (default 1), each with
# $FUZZPARALLEL workers (default: go test's, GOMAXPROCS). Each target's output goes to
# $FUZZLOG/<pkg>.<target>.log when FUZZLOG is set, else to the terminal.
# `go test -fuzz` takes one target in one package at a time, so list them first:
# `go test -list` prints a package's matching names, then its "ok <pkg>" line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZJOBS=${FUZZJOBS:-1}
FUZZPARALLEL=${FUZZPARALLEL:-}

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
# fuzz_one PKG NAME runs one target; its exit status is the target's.
fuzz_one() {
	local pkg=$1 name=$2 par=()
	[[ -n $FUZZPARALLEL ]] && par=(-parallel "$FUZZPARALLEL")
	echo "=== fuzz $pkg $name ($FUZZTIME)"
	if [[ -n ${FUZZLOG:-} ]]; then
		local log="$FUZZLOG/${pkg//\//_}.$name.log"
		"$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "${par[@]}" "$pkg" >"$log" 2>&1 ||
			{ echo "--- FAIL fuzz $pkg $name (see $log)"; return 1; }
		grep "execs:" "$log" | tail -n 1
		tail -n 1 "$log"
	else
		"$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "${par[@]}" "$pkg"
	fi
}
export -f fuzz_one
export GO FUZZTIME FUZZPARALLEL FUZZLOG

[[ -n ${FUZZLOG:-} ]] && mkdir -p "$FUZZLOG"
printf '%s\n' "${targets[@]}" | xargs -P "$FUZZJOBS" -L 1 bash -c 'fuzz_one "$0" "$1"'
echo "fuzz: ${#targets[@]} target(s) passed"
