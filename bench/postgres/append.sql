-- One accepted event: its dedupe record, its row and its request (500 B body).
\set r random(1, 1000000000)
BEGIN;
INSERT INTO seen (route, id, at) VALUES ('/hooks/a', 'id-' || :client_id || '-' || :r, 1) ON CONFLICT DO NOTHING;
WITH e AS (INSERT INTO events (id, route, received_at, next_attempt_at) VALUES ('id-' || :r, '/hooks/a', 1, 0) RETURNING seq)
INSERT INTO requests SELECT seq, '[["content-type","application/json"]]', decode(repeat('7b22612233', 100), 'hex') FROM e;
COMMIT;
