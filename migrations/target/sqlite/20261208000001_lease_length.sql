-- how long the holder's lease runs from each renewal: the holder renews it every third of it,
-- so the console tells a runner that missed its heartbeat (lease_expires_at - lease_ms is the
-- last one) before the lease runs out. Null for runs from before it was kept.
alter table sti_backfill_runs add column lease_ms bigint;
