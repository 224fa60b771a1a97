#!/bin/sh
# List command for the tests: two mailboxes in firma.cz, none elsewhere.
[ "$MAILMIGRATE_HOSTING_OP" = list ] || { echo "called as $MAILMIGRATE_HOSTING_OP" >&2; exit 9; }
in=$(cat)
case "$in" in
*'"domain":"firma.cz"'*)
	# Unsorted and with an unknown field on purpose.
	echo '{"mailboxes":[{"address":"petr@firma.cz","quota_bytes":0,"used_bytes":-1},{"address":"jana@firma.cz","quota_bytes":1073741824,"used_bytes":5242880,"plan":"gold"}]}'
	;;
*)
	echo '{"mailboxes":[]}'
	;;
esac
