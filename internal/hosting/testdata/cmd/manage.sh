#!/bin/sh
# The optional commands for the tests (password, set_quota, aliases): one
# program for all, telling them apart by $MAILMIGRATE_HOSTING_OP. Records
# each request, its environment and arguments, so the test can check that
# a password came only on stdin.
op=$MAILMIGRATE_HOSTING_OP
in=$(cat)
printf '%s' "$in" >"$HOSTING_TEST_DIR/$op.stdin"
env >"$HOSTING_TEST_DIR/$op.env"
printf '%s\n' "$0" "$@" >"$HOSTING_TEST_DIR/$op.args"
case "$op:$in" in
*'"address":"nikdo@firma.cz"'*)
	echo '{"error":"not_found","message":"no such mailbox in the panel"}'
	exit 1
	;;
set_quota:*'"quota_bytes":1099511627776'*)
	echo '{"error":"invalid","message":"Your plan allows at most 50 GB."}'
	exit 1
	;;
password:* | set_quota:* | remove_alias:*)
	echo '{}'
	;;
add_alias:*'"address":"info@firma.cz"'*)
	echo '{"error":"exists","message":"info@firma.cz is an alias already"}'
	exit 1
	;;
add_alias:*)
	;;
list_aliases:*)
	echo '{"aliases":[{"address":"sales@firma.cz","targets":["petr@firma.cz"]},{"address":"info@firma.cz","targets":["jana@firma.cz","petr@firma.cz"]},{"address":"x@jinde.cz","targets":["a@b.cz"]}]}'
	;;
*)
	echo "unexpected operation $op" >&2
	exit 9
	;;
esac
