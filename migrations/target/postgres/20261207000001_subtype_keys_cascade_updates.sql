-- an application that changes a project's id moves its subtype row with it (sqlite did so
-- through the capture's triggers; here the key refused the update). every foreign key from a
-- subtype table to projects goes, whatever its name, and one that cascades deletes and updates
-- takes its place, added not valid: the next migration validates it without blocking writes.
-- the locks are taken in the application's order — projects, then the subtype tables — so this
-- waits behind an application transaction instead of deadlocking with it.
lock table projects in access exclusive mode;
lock table school_projects, self_study_projects in access exclusive mode;

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
    foreign key (project_id) references projects (id) on delete cascade on update cascade not valid;
alter table self_study_projects add constraint self_study_projects_project_id_fkey
    foreign key (project_id) references projects (id) on delete cascade on update cascade not valid;
