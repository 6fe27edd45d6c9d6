-- a reconcile is a backfill run over the ids a verification found different instead of a key
-- range: their list (a JSON array, sorted), null for every other run. Rows it re-copies carry
-- its id, so a rollback deletes them as it deletes any backfill's.
alter table sti_backfill_runs add column ids text;

-- the change capture finds a written row's dead letters by project id: without this, every
-- application write would scan the dead-letter table
create index if not exists sti_backfill_dead_letters_project on sti_backfill_dead_letters (project_id);
