-- an application that deletes a legacy project knows nothing of the subtype tables: the delete
-- takes the project's subtype row with it instead of failing on the foreign key (and a
-- backfill chunk that meets a concurrent delete no longer fails on it either).
-- every foreign key from a subtype table to projects goes, whatever its name, and one that
-- cascades takes its place.
do $$
declare
    fk record;
begin
    for fk in
        select conname, conrelid::regclass as tbl from pg_constraint
        where contype = 'f' and confrelid = 'projects'::regclass
          and conrelid in ('school_projects'::regclass, 'self_study_projects'::regclass)
    loop
        execute format('alter table %s drop constraint %I', fk.tbl, fk.conname);
    end loop;
end
$$;

alter table school_projects add constraint school_projects_project_id_fkey
    foreign key (project_id) references projects (id) on delete cascade;
alter table self_study_projects add constraint self_study_projects_project_id_fkey
    foreign key (project_id) references projects (id) on delete cascade;
