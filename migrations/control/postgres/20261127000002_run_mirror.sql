-- the control database's mirror of every environment's runs and their chunk ledger, for the
-- console and for history; the target database stays the source of truth. times are unix epoch ms.

create table if not exists runs (
    environment text not null references environments (name),
    run_id bigint not null,
    kind text not null,
    state text not null,
    started_by text not null,
    chunk_size bigint not null,
    low_id bigint not null,
    high_id bigint not null,
    checkpoint bigint not null,
    chunks bigint not null,
    rows_read bigint not null,
    school_created bigint not null,
    self_study_created bigint not null,
    school_skipped bigint not null,
    self_study_skipped bigint not null,
    errors bigint not null,
    error text,
    created_at bigint not null,
    updated_at bigint not null,
    finished_at bigint,
    primary key (environment, run_id)
);

create table if not exists run_chunks (
    environment text not null,
    run_id bigint not null,
    chunk_no bigint not null,
    from_id bigint not null,
    to_id bigint not null,
    rows_read bigint not null,
    created bigint not null,
    skipped bigint not null,
    errors bigint not null,
    duration_ms bigint not null,
    primary key (environment, run_id, chunk_no),
    foreign key (environment, run_id) references runs (environment, run_id)
);

-- verifications: per environment, what was compared and what did not match.
create table if not exists verifications (
    id bigint generated always as identity primary key,
    environment text not null references environments (name),
    ok boolean not null,
    ranges bigint not null,
    mismatched_ranges bigint not null,
    legacy_school bigint not null,
    legacy_self_study bigint not null,
    school_rows bigint not null,
    self_study_rows bigint not null,
    mismatched_ids text not null,
    duration_ms bigint not null,
    created_at bigint not null
);
