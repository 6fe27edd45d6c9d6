-- the mirror of parallel workers: how many workers each process starts for the run, and which
-- worker committed each chunk (null for chunks from before workers were recorded)
alter table runs add column workers integer not null default 1;
alter table run_chunks add column worker text;
