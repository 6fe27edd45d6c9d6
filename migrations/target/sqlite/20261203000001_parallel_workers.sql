-- parallel workers (PRODUCT §7). A run started with more than one worker has its frozen key
-- range cut into slices; workers on any machine claim a slice (for update skip locked), and each
-- of its chunks commits only while the claim's token is the worker's and the run is running.
-- workers: how many workers each process that works on the run starts (1: the run is one
-- loop, as before, and has no slices).
alter table sti_backfill_runs add column workers integer not null default 1;

-- which worker committed the chunk (the runner's name, '#n' for its n-th worker task); the
-- slice it belongs to (null: a run without slices).
alter table sti_backfill_chunks add column worker text;
alter table sti_backfill_chunks add column slice_no integer;

create table if not exists sti_backfill_slices (
    run_id integer not null references sti_backfill_runs (id),
    slice_no integer not null,
    -- (low_id, high_id]; checkpoint: the last key done, low_id .. high_id
    low_id integer not null,
    high_id integer not null,
    checkpoint integer not null,
    done integer not null default 0 check (done in (0, 1)),
    -- the claim: bumped by every worker that claims the slice; a chunk's update matches on it
    claim_token integer not null default 0,
    claimed_by text,
    claim_expires_at integer,
    -- what a worker gave up on here: no worker claims the slice again, and the run fails with it
    error text,
    primary key (run_id, slice_no)
);

-- deferred validation (PostgreSQL, opt-in): defer_fks = 1 drops the subtype tables' foreign keys
-- to projects for the copy (dropped_fks: what was dropped, a JSON list of [table, name,
-- definition]) and adds them back after it, validated once (fk_validation_ms); fk_restored_at
-- is when they were back. While a run has dropped them and they are not back, the schema check
-- accepts them missing.
alter table sti_backfill_runs add column defer_fks integer not null default 0;
alter table sti_backfill_runs add column dropped_fks text;
alter table sti_backfill_runs add column fk_restored_at integer;
alter table sti_backfill_runs add column fk_validation_ms integer;
