#!/bin/sh
# The pipeline's process roles, created with their passwords when the
# compose PostgreSQL first initialises its data directory (the image runs
# /docker-entrypoint-initdb.d/*.sh once). The migrations
# (warehouse/migrations/016_process_roles.sql) find them and grant them
# their privileges. The passwords come from the environment, read by psql's
# \getenv, never from a command line.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv api_password PIPELINE_API_DB_PASSWORD
\getenv worker_password PIPELINE_WORKER_DB_PASSWORD
CREATE ROLE pipeline_api LOGIN PASSWORD :'api_password';
CREATE ROLE pipeline_worker LOGIN PASSWORD :'worker_password';
SQL
