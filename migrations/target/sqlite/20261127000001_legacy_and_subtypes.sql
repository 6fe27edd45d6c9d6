-- target schema (PRODUCT §2): the legacy projects table and the two subtype tables it is split into.

-- legacy: project_type is free text ('school', 'School', 'self-study', 'self_study', '' or null).
create table if not exists projects (
    id integer primary key,
    title text not null,
    owner_id integer not null,
    project_type text,
    school_name text,
    grade integer,
    pace text,
    goal_date text,
    created_at text not null,
    updated_at text not null
);

-- backfill_run_id is null when the application wrote the row (dual write), and names the
-- backfill run otherwise: rollback deletes exactly the rows a run created. it has no index on
-- purpose: rollback and verify walk project_id ranges, and an index would cost every insert.
create table if not exists school_projects (
    project_id integer primary key references projects (id),
    school_name text not null,
    grade integer check (grade between 1 and 13),
    backfill_run_id integer,
    created_at text not null
);

create table if not exists self_study_projects (
    project_id integer primary key references projects (id),
    pace text check (pace in ('relaxed', 'regular', 'intensive')),
    goal_date text,
    backfill_run_id integer,
    created_at text not null
);
