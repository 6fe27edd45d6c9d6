-- api keys for applications (the projects service): scoped to one environment and to read or
-- write. only the sha-256 of a key is kept; prefix lets people tell keys apart. times: epoch ms.
create table if not exists api_keys (
    id bigint generated always as identity primary key,
    environment text not null references environments (name),
    scope text not null check (scope in ('read', 'write')),
    prefix text not null,
    key_hash text not null unique,
    created_by text not null,
    created_at bigint not null,
    revoked_at bigint
);
