-- notifications (issue 18). every console on this control database finds what happened (the
-- audit log past a cursor, runs that ended or hold) and queues one delivery per configured
-- webhook; dedup_key makes a second console's find of the same event a no-op. a delivery
-- keeps its body (signed as it is sent), is claimed by one console at a time (claimed_until),
-- and is retried with backoff until delivered or given up. times are unix epoch ms.
create table if not exists webhook_deliveries (
    id bigint generated always as identity primary key,
    environment text not null,
    hook text not null,
    event text not null,
    dedup_key text not null unique,
    summary text not null,
    body text not null,
    created_at bigint not null,
    state text not null default 'pending',
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    claimed_until bigint,
    last_status bigint,
    last_error text,
    finished_at bigint
);
create index if not exists webhook_deliveries_due on webhook_deliveries (state, next_attempt_at);
create index if not exists webhook_deliveries_environment on webhook_deliveries (environment, id);

-- how far the finders have read: 'audit' (the last audit_log id) and 'runs' (runs.updated_at).
create table if not exists webhook_cursors (
    name text primary key,
    position bigint not null
);
