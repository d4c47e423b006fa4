#!/bin/sh
# A replica script that fails the way a backup tool does: progress, then an error, then exit 3.
# Everything goes to stderr so that the order of the lines is certain (stdout and stderr are
# separate pipes, read concurrently).
exec 1>&2
echo "fetching latest backup"
echo "fatal: no backup found in s3://bucket/batman"
exit 3
