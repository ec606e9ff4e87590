#!/bin/sh
# The replica's entrypoint: on first start, clone the primary with pg_basebackup (-R writes
# standby.signal and primary_conninfo, so it starts as a hot standby streaming WAL), then hand
# over to the image's own entrypoint, which finds the data directory initialised and starts it.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGPASSWORD="$REPLICATION_PASSWORD"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -h "$PRIMARY_HOST" -p 5432 -U replicator -d postgres >/dev/null 2>&1; do
        echo "waiting for the primary at $PRIMARY_HOST"
        sleep 1
    done
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    gosu postgres pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" \
        -X stream -R -c fast --progress
fi

exec docker-entrypoint.sh "$@"
