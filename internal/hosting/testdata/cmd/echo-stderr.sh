#!/bin/sh
# Echoes the request (password included) to stderr and fails: the driver
# must not let the password into its error.
cat >&2
echo '{"error":"backend_down","message":"panel API unreachable"}'
exit 3
