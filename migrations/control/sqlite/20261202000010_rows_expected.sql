-- the mirror of sti_backfill_runs.rows_expected: progress counts rows, not the span of the keys.
alter table runs add column rows_expected bigint;
