-- settings of the rollout plan that admins change at run time (the D-day); each change is also
-- in the audit log with its before and after. updated_at: epoch ms.
create table if not exists rollout_settings (
    name text primary key,
    value text not null,
    updated_by text not null,
    updated_at bigint not null
);
