-- the mirror of sti_backfill_runs.lease_ms: the console's run health reads the runner's last
-- heartbeat from it (lease_expires_at - lease_ms).
alter table runs add column lease_ms bigint;
