-- the post-rollout checklist. items are the template (admins add and retire them; a retired
-- item keeps its sign-offs). sign-offs are append-only: signing again adds a row that supersedes
-- the previous one for that environment and item; nothing is rewritten. times: epoch ms.
create table if not exists checklist_items (
    id bigint generated always as identity primary key,
    position bigint not null,
    title text not null,
    owner_role text not null check (owner_role in ('viewer', 'operator', 'admin')),
    created_by text not null,
    created_at bigint not null,
    retired_at bigint
);

create table if not exists checklist_signoffs (
    id bigint generated always as identity primary key,
    environment text not null references environments (name),
    item_id bigint not null references checklist_items (id),
    state text not null check (state in ('pending', 'pass', 'fail', 'waived')),
    comment text not null,
    evidence_url text,
    signed_by text not null,
    signed_at bigint not null
);
create index if not exists checklist_signoffs_env_item on checklist_signoffs (environment, item_id, id);

-- the playbook's starting list: the sprint's acceptance criteria and post-rollout checklist
insert into checklist_items (position, title, owner_role, created_by, created_at) values
    (1, 'Contract tests green with ENABLE_STI off and on', 'operator', 'playbook', 0),
    (2, 'Dry-run reviewed: would-create, would-skip and rejected rows explained', 'operator', 'playbook', 0),
    (3, 'Subtype rows match legacy rows by study type (verification passed)', 'operator', 'playbook', 0),
    (4, 'sti_backfill_processed_total visible on the dashboard for this environment', 'operator', 'playbook', 0),
    (5, 'API response times and error rates normal with the flag on', 'operator', 'playbook', 0),
    (6, 'Rejected rows reviewed and owned (dead-letter export attached)', 'viewer', 'playbook', 0),
    (7, 'Frontend checked against the subtype data', 'viewer', 'playbook', 0),
    (8, 'Rollback rehearsed: flag off, data rollback dry-run', 'admin', 'playbook', 0),
    (9, 'Stakeholder sign-off', 'viewer', 'playbook', 0);
