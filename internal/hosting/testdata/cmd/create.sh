#!/bin/sh
# Create command for the tests: records what it was given, so the test can
# check that the password came only on stdin.
[ "$MAILMIGRATE_HOSTING_OP" = create ] || { echo "called as $MAILMIGRATE_HOSTING_OP" >&2; exit 9; }
in=$(cat)
printf '%s' "$in" >"$HOSTING_TEST_DIR/create.stdin"
env >"$HOSTING_TEST_DIR/create.env"
printf '%s\n' "$0" "$@" >"$HOSTING_TEST_DIR/create.args"
case "$in" in
*'"address":"taken@firma.cz"'*)
	echo '{"error":"exists","message":"taken@firma.cz is already in the panel"}'
	exit 1
	;;
esac
echo '{}'
