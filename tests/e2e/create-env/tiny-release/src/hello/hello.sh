#!/bin/sh
# The tiny job's process: says it runs, then ticks once a minute (no network, no disk writes).
echo "hello: running as $(id -un), $(cat /var/vcap/packages/hello/compiled.txt | tr '\n' ' ')"
while :; do
  sleep 60
  echo "hello: tick"
done
