-- the keys added by the migration before: one scan each, which takes a share update exclusive
-- lock on the subtype table and a row share lock on projects, so the application's reads and
-- writes go on meanwhile.
alter table school_projects validate constraint school_projects_project_id_fkey;
alter table self_study_projects validate constraint self_study_projects_project_id_fkey;
