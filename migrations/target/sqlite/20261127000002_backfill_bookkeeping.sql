-- the backfill engine's bookkeeping, next to the data it describes: a chunk's subtype rows, its
-- ledger row, its dead letters and the run's checkpoint commit in one transaction here.
-- times are unix epoch milliseconds.

-- one row per backfill or rollback run. active_slot is 1 while the run is queued, running or
-- paused and null once it ended: the unique constraint allows one active run per database.
create table if not exists sti_backfill_runs (
    id integer primary key,
    kind text not null check (kind in ('backfill', 'rollback')),
    state text not null check (state in ('queued', 'running', 'paused', 'completed', 'cancelled', 'failed')),
    active_slot integer unique check (active_slot = 1),
    requested text check (requested in ('pause', 'resume', 'cancel')),
    started_by text not null,
    chunk_size integer not null,
    pause_ms integer not null default 0,
    target_chunk_ms integer,
    low_id integer not null,
    high_id integer not null,
    checkpoint integer not null,
    -- bumped by every runner that takes the run over; each chunk's checkpoint update matches on it
    fencing_token integer not null default 1,
    lease_owner text,
    lease_expires_at integer,
    chunks integer not null default 0,
    rows_read integer not null default 0,
    school_created integer not null default 0,
    self_study_created integer not null default 0,
    school_skipped integer not null default 0,
    self_study_skipped integer not null default 0,
    errors integer not null default 0,
    error text,
    created_at integer not null,
    updated_at integer not null,
    finished_at integer
);

-- the ledger: one row per committed chunk.
create table if not exists sti_backfill_chunks (
    run_id integer not null references sti_backfill_runs (id),
    chunk_no integer not null,
    from_id integer not null,
    to_id integer not null,
    rows_read integer not null,
    school_created integer not null,
    self_study_created integer not null,
    school_skipped integer not null,
    self_study_skipped integer not null,
    errors integer not null,
    duration_ms integer not null,
    committed_at integer not null,
    primary key (run_id, chunk_no)
);

-- legacy rows that could not be given a study type, with the reason.
create table if not exists sti_backfill_dead_letters (
    run_id integer not null references sti_backfill_runs (id),
    project_id integer not null,
    reason text not null,
    recorded_at integer not null,
    primary key (run_id, project_id)
);
