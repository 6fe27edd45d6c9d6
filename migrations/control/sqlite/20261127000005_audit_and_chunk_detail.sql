-- the audit log: append-only. the code has no update or delete path for it. times: epoch ms.
-- actor is 'user:NAME', 'key:PREFIX', 'cli:LOGIN' or 'system'; before/after are JSON text.
create table if not exists audit_log (
    id integer primary key autoincrement,
    at integer not null,
    actor text not null,
    action text not null,
    environment text,
    before text,
    after text,
    reason text
);
create index if not exists audit_log_at on audit_log (at);

-- the console's charts need each chunk's rows per study type and when it committed.
alter table run_chunks add column school_created integer not null default 0;
alter table run_chunks add column self_study_created integer not null default 0;
alter table run_chunks add column committed_at integer not null default 0;

-- and, for the controls it offers, what the run was asked to do, its pause and its lease.
alter table runs add column requested text;
alter table runs add column pause_ms integer not null default 0;
alter table runs add column lease_owner text;
alter table runs add column lease_expires_at integer;
