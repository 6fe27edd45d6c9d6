-- the console reads an environment's newest entries of one action on every view (its open
-- emergency stop, its flag's changes): an index on the action, the environment and the id.
create index if not exists audit_log_action on audit_log (action, environment, id);
