-- Outcomes of 16 claimed events in one transaction (group commit).
BEGIN;
UPDATE events SET status = 'done', attempts = attempts + 1, done_at = 5, claim_token = NULL, next_attempt_at = NULL, claimed_until = NULL
 WHERE seq IN (SELECT seq FROM events WHERE status = 'pending' AND next_attempt_at = 99999 ORDER BY seq LIMIT 16 FOR UPDATE SKIP LOCKED);
COMMIT;
