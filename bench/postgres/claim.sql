-- One claim of up to 16 due events of a route, under one fresh token.
BEGIN;
WITH c AS (SELECT seq FROM events WHERE route = '/hooks/a' AND status = 'pending' AND next_attempt_at <= 1000 ORDER BY seq LIMIT 16 FOR UPDATE SKIP LOCKED)
UPDATE events SET claimed_until = 99999, next_attempt_at = 99999, claim_token = nextval('claim_tokens') FROM c WHERE events.seq = c.seq;
COMMIT;
