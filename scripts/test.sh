#!/usr/bin/env bash
# Runs every check and test of mailmigrate. On Debian it first installs what
# the tests need (Dovecot, Chromium) when it is missing; the tests start
# their own servers and browser on loopback and stop them again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed. Install Go 1.26 or newer (https://go.dev/dl/) and run this again." >&2
	exit 1
fi

missing=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
# Headless Chromium for the panel's browser tests.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "test.sh: installing ${missing[*]}"
	$sudo apt-get update -qq
	# Debian's policy keeps the system Dovecot service from starting; the
	# tests run their own instances.
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# The Dovecot and browser tests must run here, not be skipped.
export MAILMIGRATE_REQUIRE_DOVECOT=1
export MAILMIGRATE_REQUIRE_CHROMIUM=1

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test.sh: not gofmt-formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 ./...
