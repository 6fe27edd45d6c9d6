-- control schema: the console's own state. timestamps are rfc 3339 text in utc.

-- the environments the rollout visits, in order.
create table if not exists environments (
    name text primary key,
    position integer not null unique
);

-- feature flags per environment; every change also lands in the audit log (a later migration).
create table if not exists flags (
    environment text not null references environments (name),
    key text not null,
    enabled integer not null default 0 check (enabled in (0, 1)),
    updated_at text not null,
    updated_by text not null,
    primary key (environment, key)
);

-- demo data generated into a target database; serve seeds an environment only once.
create table if not exists seed_events (
    id integer primary key autoincrement,
    environment text not null references environments (name),
    first_id integer not null,
    last_id integer not null,
    rows_inserted integer not null,
    duration_ms integer not null,
    created_at text not null
);
