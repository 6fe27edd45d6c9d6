-- an application that changes a project's id moves its subtype row with it: the keys cascade
-- updates as well as deletes, as on postgresql.
-- sqlite cannot alter a foreign key: each table is rebuilt with the same columns and checks.
-- no other table references the subtype tables, so dropping them with foreign keys on is safe.
-- the change capture's triggers on projects name the subtype tables: a rename that checks the
-- schema (sqlite 3.26 and later) fails between the drop and the rename, so it checks nothing
-- for this migration. the capture's own triggers on the subtype tables go with them; the
-- console and `migrate` put the capture back up to date after migrating.
pragma legacy_alter_table = on;
create table school_projects_cascading (
    project_id integer primary key references projects (id) on delete cascade on update cascade,
    school_name text not null,
    grade integer check (grade between 1 and 13),
    backfill_run_id integer,
    created_at text not null
);
insert into school_projects_cascading (project_id, school_name, grade, backfill_run_id, created_at)
    select project_id, school_name, grade, backfill_run_id, created_at from school_projects;
drop table school_projects;
alter table school_projects_cascading rename to school_projects;

create table self_study_projects_cascading (
    project_id integer primary key references projects (id) on delete cascade on update cascade,
    pace text check (pace in ('relaxed', 'regular', 'intensive')),
    goal_date text,
    backfill_run_id integer,
    created_at text not null
);
insert into self_study_projects_cascading (project_id, pace, goal_date, backfill_run_id, created_at)
    select project_id, pace, goal_date, backfill_run_id, created_at from self_study_projects;
drop table self_study_projects;
alter table self_study_projects_cascading rename to self_study_projects;

pragma legacy_alter_table = off;
