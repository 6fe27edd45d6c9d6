-- people who use the console (PRODUCT §6). passwords are argon2id hashes in phc string form;
-- nothing here holds a password or a session id in the clear. times are unix epoch ms.

create table if not exists users (
    id bigint generated always as identity primary key,
    username text not null unique,
    password_hash text not null,
    role text not null check (role in ('viewer', 'operator', 'admin')),
    disabled boolean not null default false,
    created_at bigint not null,
    updated_at bigint not null
);

-- server-side sessions: the cookie carries a random id, this table its sha-256.
create table if not exists sessions (
    id_hash text primary key,
    user_id bigint not null references users (id),
    created_at bigint not null,
    expires_at bigint not null
);

create index if not exists sessions_user on sessions (user_id);
