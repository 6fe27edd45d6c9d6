-- the security review (issue 15). times are unix epoch ms.

-- failed sign-ins per key ('user:NAME' or 'addr:IP'), shared by every console on this control
-- database and kept across restarts. a user key delays its next check (next_at, growing per
-- failure); an address key counts failures in a window. throttled counts refused attempts, so
-- the audit log records the first of a burst and not every one.
create table if not exists login_attempts (
    key text primary key,
    failures integer not null default 0,
    next_at integer not null default 0,
    last_at integer not null,
    throttled integer not null default 0
);
create index if not exists login_attempts_last_at on login_attempts (last_at);

-- sessions end after idle_ms without a request, as well as at expires_at. sessions from before
-- this have never been seen: they end, and their users sign in again.
alter table sessions add column last_seen_at integer not null default 0;
alter table sessions add column idle_ms integer not null default 1800000;

-- api keys may expire; when a key was last used is shown on the keys page.
alter table api_keys add column expires_at integer;
alter table api_keys add column last_used_at integer;

-- a generated password (the first administrator's) must be replaced at the first sign-in.
alter table users add column must_change_password integer not null default 0 check (must_change_password in (0, 1));

-- the audit log is append-only in the database itself, not by convention.
create trigger if not exists audit_log_no_update before update on audit_log
begin
    select raise(abort, 'the audit log is append-only: update is refused');
end;
create trigger if not exists audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'the audit log is append-only: delete is refused');
end;
