# Sourced by the CI scripts that start the server: the PostgreSQL half of CI.
#
# With MM_DATABASE_URL set to the admin URL of a PostgreSQL cluster
# (`bash tests/pg/cluster.sh start` prints one), fresh_database_url creates a
# new, empty database mm_<random> on it and prints its URL, for the script's
# server to use with --database-url; without it, it prints nothing (sled).

fresh_database_url() {
    [ -n "${MM_DATABASE_URL:-}" ] || return 0
    local name="mm_ci_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql "$MM_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $name" >&2 || return 1
    # The admin URL with its database replaced by the new one.
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
        "$MM_DATABASE_URL" "$name"
}

# The backend a script runs on, for its messages.
backend_name() {
    if [ -n "${MM_DATABASE_URL:-}" ]; then echo postgresql; else echo sled; fi
}
