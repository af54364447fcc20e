#!/usr/bin/env bash
# vulncheck.sh runs govulncheck over both modules (the gateway's and bench/) against
# the Go vulnerability database as of $VULNDB: the golang.org/x/vulndb module of that
# version, fetched like any module and indexed here, so that no other site is needed
# and a run is the same on every machine. It fails when the code can reach a known
# vulnerability of a dependency or of the standard library it is built with (go.mod's
# toolchain line names a release with every fix the database knows). Move VULNDB to the
# module's newest version to learn of newer vulnerabilities.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
VULNDB=${VULNDB:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK=${GOVULNCHECK:-v1.9.0}

src=$("$GO" mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $src/data/osv ]] || { echo "vulncheck: golang.org/x/vulndb@$VULNDB has no data/osv" >&2; exit 1; }
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
"$GO" run "golang.org/x/vulndb/cmd/indexdb@$VULNDB" -vulns "$src/data/osv" -out "$db/db"
echo "vulncheck: $("$GO" version), database golang.org/x/vulndb@$VULNDB"
"$GO" run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK" -db "file://$db/db" ./...
"$GO" -C bench run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK" -db "file://$db/db" ./...
