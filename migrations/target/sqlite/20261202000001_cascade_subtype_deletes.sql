-- an application that deletes a legacy project knows nothing of the subtype tables: the delete
-- takes the project's subtype row with it instead of failing on the foreign key (and a
-- backfill chunk that meets a concurrent delete no longer fails on it either).
-- sqlite cannot alter a foreign key: each table is rebuilt with the same columns and checks.
-- no other table references the subtype tables, so dropping them with foreign keys on is safe.
create table school_projects_cascading (
    project_id integer primary key references projects (id) on delete cascade,
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
    project_id integer primary key references projects (id) on delete cascade,
    pace text check (pace in ('relaxed', 'regular', 'intensive')),
    goal_date text,
    backfill_run_id integer,
    created_at text not null
);
insert into self_study_projects_cascading (project_id, pace, goal_date, backfill_run_id, created_at)
    select project_id, pace, goal_date, backfill_run_id, created_at from self_study_projects;
drop table self_study_projects;
alter table self_study_projects_cascading rename to self_study_projects;
