-- people who use the console (PRODUCT §6). passwords are argon2id hashes in phc string form;
-- nothing here holds a password or a session id in the clear. times are unix epoch ms.

create table if not exists users (
    id integer primary key autoincrement,
    username text not null unique,
    password_hash text not null,
    role text not null check (role in ('viewer', 'operator', 'admin')),
    disabled integer not null default 0 check (disabled in (0, 1)),
    created_at integer not null,
    updated_at integer not null
);

-- server-side sessions: the cookie carries a random id, this table its sha-256.
create table if not exists sessions (
    id_hash text primary key,
    user_id integer not null references users (id),
    created_at integer not null,
    expires_at integer not null
);

create index if not exists sessions_user on sessions (user_id);
