#!/bin/sh
# One database and one login role per gongkai service; each role owns only its database.
# Run by the postgres image on first start (compose), or by the Kubernetes postgres init.
# Passwords come from GK_PG_<SERVICE>_PASSWORD. The tables come from the versioned migrations
# (`gongkai db upgrade`, the db-migrate init step), run as each service's role.
set -eu
for svc in intake review freshness accountability; do
  var="GK_PG_$(echo "$svc" | tr '[:lower:]' '[:upper:]')_PASSWORD"
  eval "pw=\${$var:?$var is not set}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
       -v role="$svc" -v pw="$pw" -v db="gongkai_$svc" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
