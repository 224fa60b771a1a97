#!/bin/sh
# Never answers; leaves a child behind that a timeout must kill too.
cat >/dev/null
sleep 60 &
echo $! >"$HOSTING_TEST_DIR/child.pid"
wait
