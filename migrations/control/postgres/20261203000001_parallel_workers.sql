-- the mirror of parallel workers: how many workers each process starts for the run, and which
-- worker committed each chunk (null for chunks from before workers were recorded); and how long
-- a deferred validation of the foreign keys took
alter table runs add column workers integer not null default 1;
alter table run_chunks add column worker text;
alter table runs add column fk_validation_ms bigint;
