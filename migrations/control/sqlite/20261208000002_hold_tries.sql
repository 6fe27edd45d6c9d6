-- a waiting run's box is a runbook: how many times the runner tried, and when it gives up on
-- the fault (its retry policy's limit). null while the run does not wait.
alter table runs add column hold_tries integer;
alter table runs add column hold_gives_up_at integer;
