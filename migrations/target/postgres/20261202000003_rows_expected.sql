-- how many rows a run expected to handle when it began (legacy rows in its range for a
-- backfill, the rows backfills created for a rollback): progress and ETA count rows, not the
-- span of the keys, which one outlier id can make a million times longer than the rows.
alter table sti_backfill_runs add column rows_expected bigint;
