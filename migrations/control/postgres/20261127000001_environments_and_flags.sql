-- control schema: the console's own state. timestamps are rfc 3339 text in utc, as on sqlite,
-- so both engines read them the same way.

-- the environments the rollout visits, in order.
create table if not exists environments (
    name text primary key,
    position integer not null unique
);

-- feature flags per environment; every change also lands in the audit log (a later migration).
create table if not exists flags (
    environment text not null references environments (name),
    key text not null,
    enabled boolean not null default false,
    updated_at text not null,
    updated_by text not null,
    primary key (environment, key)
);

-- demo data generated into a target database; serve seeds an environment only once.
create table if not exists seed_events (
    id bigint generated always as identity primary key,
    environment text not null references environments (name),
    first_id bigint not null,
    last_id bigint not null,
    rows_inserted bigint not null,
    duration_ms bigint not null,
    created_at text not null
);
