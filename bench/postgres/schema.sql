-- A model of the inbox's hot tables, for measuring what one event costs
-- PostgreSQL (docs/scaling.md). Not the store's migration: the columns that
-- appends, claims and outcomes touch, with the same kind of indexes.
--   psql -h 127.0.0.1 -d test -c 'create database hh_measure'
--   psql -h 127.0.0.1 -d hh_measure -f bench/postgres/schema.sql
--   pgbench -h 127.0.0.1 -n -f bench/postgres/append.sql -c 8 -j 2 -T 8 hh_measure
--   pgbench -h 127.0.0.1 -n -f bench/postgres/claim.sql -c 1 -j 1 -T 5 hh_measure
--   pgbench -h 127.0.0.1 -n -f bench/postgres/outcome.sql -c 1 -j 1 -T 5 hh_measure
CREATE TABLE events (
    seq bigserial PRIMARY KEY, id text NOT NULL, route text NOT NULL,
    status text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,
    received_at bigint NOT NULL, next_attempt_at bigint, claimed_until bigint,
    claim_token bigint, order_key text, done_at bigint
);
CREATE INDEX events_route_due ON events (route, next_attempt_at) WHERE status = 'pending';
-- Drop this one to see the claim sort every due row (docs/scaling.md).
CREATE INDEX events_route_seq ON events (route, seq) WHERE status = 'pending';
CREATE TABLE requests (seq bigint PRIMARY KEY, headers text NOT NULL, body bytea NOT NULL);
CREATE TABLE seen (route text NOT NULL, id text NOT NULL, at bigint NOT NULL, PRIMARY KEY (route, id));
CREATE SEQUENCE claim_tokens;
