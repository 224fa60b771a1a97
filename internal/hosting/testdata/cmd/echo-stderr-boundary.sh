#!/bin/sh
# Fills stderr to just below the 4 KiB the driver keeps, then echoes the
# request, so the password straddles the cut.
head -c "${HOSTING_TEST_FILL:-4080}" /dev/zero | tr '\0' x >&2
cat >&2
exit 1
