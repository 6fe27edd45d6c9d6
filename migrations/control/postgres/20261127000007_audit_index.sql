-- the rollout's facts read the audit log by environment and action on every live update
create index if not exists audit_log_env_action on audit_log (environment, action);
