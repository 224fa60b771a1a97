#!/usr/bin/env bash
# Runs every check and test of mailmigrate. On Debian it first installs what
# the tests need (Dovecot, Chromium, PostgreSQL, and Cyrus, Courier and
# Mailutils unpacked privately) when it is missing; the tests start their
# own servers and browser on loopback and stop them again. With --install
# it only installs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed. Install Go 1.26 or newer (https://go.dev/dl/) and run this again." >&2
	exit 1
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_updated=""
apt_install() {
	echo "test.sh: installing $*"
	if [ -z "$apt_updated" ]; then
		$sudo apt-get update -qq
		apt_updated=1
	fi
	# Another apt run (a second checkout's test.sh) may hold the lock.
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}

missing=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
# Headless Chromium for the panel's browser tests.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# PostgreSQL's programs: the store's and the job queue's tests start a
# private cluster of their own (internal/testbed).
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# The libraries of the unpacked servers below (they conflict with
# nothing), openssl for Mailutils' password hashes and unshare for the
# private mount namespaces of Cyrus and Courier.
server_libs=(libcom-err2 libcourier-unicode4 libcrypt1 libdb5.3 libgamin0 libgdbm6 libgnutls30 libgsasl18
	libgssapi-krb5-2 libical3 libicu72 libidn12 libjansson4 libk5crypto3 libkrb5-3 libldap-2.5-0 libltdl7
	libmailutils9 libnsl2 libpam0g libpcre3 libpq5 libsasl2-2 libsasl2-modules libsasl2-modules-db libsqlite3-0
	libssl3 libstdc++6 libunistring2 libwrap0 libxapian30 libxml2 zlib1g mailutils-common openssl util-linux)
# dpkg-query fails when any of them is unknown to dpkg: that is the answer
# sought, not an error.
installed=" $( (dpkg-query -W -f='${Package}=${Status}\n' "${server_libs[@]}" 2>/dev/null || true) |
	sed -n 's/=install ok installed$//p' | tr '\n' ' ') "
for p in "${server_libs[@]}"; do
	[[ $installed == *" $p "* ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	# Debian's policy keeps the system Dovecot service from starting; the
	# tests run their own instances. postgresql creates and starts
	# Debian's main cluster on port 5432, which the tests leave alone:
	# they run their own clusters too.
	apt_install "${missing[@]}"
fi

# Cyrus and Courier for the cross-server tests: cyrus-imapd and
# courier-imap conflict with dovecot-imapd, and installing
# mailutils-imap4d enables a system imap4d on port 143, so these are
# downloaded and unpacked into a private tree that the tests run them from
# (internal/testbed: ServersRoot). Delete the tree to fetch newer versions.
servers_root=${MAILMIGRATE_TESTSERVERS:-/var/cache/mailmigrate-testservers/root}
server_pkgs=(cyrus-common cyrus-imapd sasl2-bin courier-base courier-imap courier-authlib courier-authlib-userdb
	courier-authdaemon mailutils-imap4d)
if [ "$(cat "$servers_root/.unpacked" 2>/dev/null)" != "${server_pkgs[*]}" ]; then
	echo "test.sh: unpacking ${server_pkgs[*]} into $servers_root"
	[ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
	debs=$(mktemp -d)
	# apt's download user must be able to write there.
	chmod 777 "$debs"
	(cd "$debs" && apt-get download -qq "${server_pkgs[@]}")
	$sudo rm -rf "$servers_root"
	$sudo mkdir -p "$servers_root"
	for deb in "$debs"/*.deb; do
		$sudo dpkg-deb -x "$deb" "$servers_root"
	done
	echo "${server_pkgs[*]}" | $sudo tee "$servers_root/.unpacked" >/dev/null
	rm -rf "$debs"
fi
export MAILMIGRATE_TESTSERVERS="$servers_root"
export PATH="$PATH:/usr/sbin"

# The Dovecot, other servers' and browser tests must run here, not be skipped.
export MAILMIGRATE_REQUIRE_DOVECOT=1
export MAILMIGRATE_REQUIRE_SERVERS=1
export MAILMIGRATE_REQUIRE_CHROMIUM=1
export MAILMIGRATE_REQUIRE_POSTGRES=1

if [ "${1:-}" = --install ]; then
	exit 0
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test.sh: not gofmt-formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 ./...
# The API's, the panel's and the admin commands' tests once more with the
# data in PostgreSQL instead of SQLite: the same tests pass on both.
MAILMIGRATE_TEST_STORE=postgres go test -race -count=1 ./internal/web/
MAILMIGRATE_TEST_STORE=postgres go test -race -count=1 -run 'TestServe|Browser|TestPanel|TestAdmin' ./cmd/mailmigrate/
