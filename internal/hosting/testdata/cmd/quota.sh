#!/bin/sh
# Quota command for the tests.
[ "$MAILMIGRATE_HOSTING_OP" = quota ] || { echo "called as $MAILMIGRATE_HOSTING_OP" >&2; exit 9; }
in=$(cat)
case "$in" in
*'"address":"jana@firma.cz"'*)
	echo '{"address":"jana@firma.cz","quota_bytes":1073741824,"used_bytes":5242880}'
	;;
*'"address":"petr@firma.cz"'*)
	# used_bytes omitted: unknown.
	echo '{"address":"petr@firma.cz","quota_bytes":0}'
	;;
*)
	echo '{"error":"not_found","message":"no such mailbox in the panel"}'
	exit 1
	;;
esac
