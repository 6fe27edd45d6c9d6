-- subtype rows without their project (written while a deferred validation had the keys off)
-- would fail the validation with the database's bare words: say what they are instead.
do $$
begin
    if exists (select 1 from school_projects s where not exists (select 1 from projects p where p.id = s.project_id))
       or exists (select 1 from self_study_projects s where not exists (select 1 from projects p where p.id = s.project_id))
    then
        raise exception 'subtype rows without their project exist (written while the foreign keys were off): delete or mend them, then run sti-rollout migrate again';
    end if;
end
$$;

-- the keys added by the migration before: one scan each, which takes a share update exclusive
-- lock on the subtype table and a row share lock on projects, so the application's reads and
-- writes go on meanwhile.
alter table school_projects validate constraint school_projects_project_id_fkey;
alter table self_study_projects validate constraint self_study_projects_project_id_fkey;
