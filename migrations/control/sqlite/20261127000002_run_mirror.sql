-- the control database's mirror of every environment's runs and their chunk ledger, for the
-- console and for history; the target database stays the source of truth. times are unix epoch ms.

create table if not exists runs (
    environment text not null references environments (name),
    run_id integer not null,
    kind text not null,
    state text not null,
    started_by text not null,
    chunk_size integer not null,
    low_id integer not null,
    high_id integer not null,
    checkpoint integer not null,
    chunks integer not null,
    rows_read integer not null,
    school_created integer not null,
    self_study_created integer not null,
    school_skipped integer not null,
    self_study_skipped integer not null,
    errors integer not null,
    error text,
    created_at integer not null,
    updated_at integer not null,
    finished_at integer,
    primary key (environment, run_id)
);

create table if not exists run_chunks (
    environment text not null,
    run_id integer not null,
    chunk_no integer not null,
    from_id integer not null,
    to_id integer not null,
    rows_read integer not null,
    created integer not null,
    skipped integer not null,
    errors integer not null,
    duration_ms integer not null,
    primary key (environment, run_id, chunk_no),
    foreign key (environment, run_id) references runs (environment, run_id)
);

-- verifications: per environment, what was compared and what did not match.
create table if not exists verifications (
    id integer primary key autoincrement,
    environment text not null references environments (name),
    ok integer not null,
    ranges integer not null,
    mismatched_ranges integer not null,
    legacy_school integer not null,
    legacy_self_study integer not null,
    school_rows integer not null,
    self_study_rows integer not null,
    mismatched_ids text not null,
    duration_ms integer not null,
    created_at integer not null
);
