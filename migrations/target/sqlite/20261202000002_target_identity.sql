-- which database this is, whatever URL names it: one row, made by the console the first time
-- it opens the database. Two environments whose targets hold one identity are one database (or
-- one is a restored copy of the other), and a target whose identity changed is a new database,
-- whose runs are not the ones the console mirrored before.
create table if not exists sti_target_identity (
    singleton integer primary key check (singleton = 1),
    id text not null,
    created_at integer not null
);
