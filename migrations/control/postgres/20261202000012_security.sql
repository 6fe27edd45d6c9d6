-- the security review (issue 15). times are unix epoch ms.

-- failed sign-ins per key ('user:NAME' or 'addr:IP'), shared by every console on this control
-- database and kept across restarts. a user key delays its next check (next_at, growing per
-- failure); an address key counts failures in a window. throttled counts refused attempts, so
-- the audit log records the first of a burst and not every one.
create table if not exists login_attempts (
    key text primary key,
    failures bigint not null default 0,
    next_at bigint not null default 0,
    last_at bigint not null,
    throttled bigint not null default 0
);
create index if not exists login_attempts_last_at on login_attempts (last_at);

-- sessions end after idle_ms without a request, as well as at expires_at. sessions from before
-- this have never been seen: they end, and their users sign in again.
alter table sessions add column last_seen_at bigint not null default 0;
alter table sessions add column idle_ms bigint not null default 1800000;

-- api keys may expire; when a key was last used is shown on the keys page.
alter table api_keys add column expires_at bigint;
alter table api_keys add column last_used_at bigint;

-- a generated password (the first administrator's) must be replaced at the first sign-in.
alter table users add column must_change_password boolean not null default false;

-- the audit log is append-only in the database itself, not by convention.
create or replace function audit_log_refuse() returns trigger language plpgsql as $$
begin
    raise exception 'the audit log is append-only: % is refused', lower(tg_op);
end;
$$;
create trigger audit_log_no_change before update or delete on audit_log
    for each row execute function audit_log_refuse();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_refuse();
