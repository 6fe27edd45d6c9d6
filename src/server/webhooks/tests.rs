use super::*;

fn audit(action: &str, before: Value, after: Value, reason: Option<&str>) -> AuditRow {
    AuditRow {
        id: 41,
        at: 1_764_790_000_000,
        actor: "user:alice".into(),
        action: action.into(),
        before,
        after,
        reason: reason.map(str::to_owned),
    }
}

#[test]
fn the_audit_entries_that_are_events_and_those_that_are_not() {
    let on = audit("flag.set", json!({"enabled": false}), json!({"enabled": true}), Some("go"));
    let notice = from_audit(Environment::Prod, &on).unwrap();
    assert_eq!(notice.event, Event::FlagChanged);
    assert_eq!(notice.summary, "prod: ENABLE_STI turned on by user:alice: go");
    assert_eq!(notice.key, "audit:41");
    let unchanged = audit("flag.set", json!({"enabled": true}), json!({"enabled": true}), None);
    assert_eq!(
        from_audit(Environment::Prod, &unchanged),
        None,
        "setting the flag to what it was changes nothing"
    );

    let stop = audit(
        "emergency_stop",
        Value::Null,
        json!({"ENABLE_STI": false, "cancel_requested": 7}),
        Some("bad"),
    );
    assert_eq!(
        from_audit(Environment::Prod, &stop).unwrap().summary,
        "prod: EMERGENCY STOP by user:alice: bad (ENABLE_STI off, run #7 cancelling)"
    );
    let clean = audit("verify", Value::Null, json!({"ok": true}), None);
    assert_eq!(from_audit(Environment::Dev, &clean), None);
    let dirty = audit(
        "verify",
        Value::Null,
        json!({"ok": false, "mismatched_ranges": 2, "mismatched_ids": 1500}),
        None,
    );
    assert_eq!(
        from_audit(Environment::Dev, &dirty).unwrap().summary,
        "dev: verification by user:alice failed: 2 mismatched ranges, 1,500 mismatched ids"
    );
    let gate = audit(
        "gate.override",
        json!({"gate": "flag on", "closed": "not verified"}),
        Value::Null,
        Some("hotfix"),
    );
    assert_eq!(from_audit(Environment::Prod, &gate).unwrap().event, Event::GateOverridden);
    let passed = audit("checklist.sign", Value::Null, json!({"state": "pass", "title": "Backups"}), None);
    assert_eq!(from_audit(Environment::Prod, &passed), None);
    let failed = audit("checklist.sign", Value::Null, json!({"state": "fail", "title": "Backups"}), None);
    assert_eq!(
        from_audit(Environment::Prod, &failed).unwrap().summary,
        "prod: checklist item \"Backups\" marked failed by user:alice"
    );
    assert_eq!(from_audit(Environment::Prod, &audit("login", Value::Null, Value::Null, None)), None);
}

fn run(state: &str) -> RunRow {
    RunRow {
        id: 7,
        kind: "backfill".into(),
        state: state.into(),
        error: None,
        created: 1000,
        skipped: 20,
        rejected: 3,
        updated_at: 5,
        hold_kind: None,
        hold_reason: None,
        hold_since: None,
    }
}

#[test]
fn a_run_is_announced_when_it_ends_and_once_per_hold() {
    let done = from_run(Environment::Staging, &run("completed"));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].summary, "staging: backfill #7 completed: 1,000 created, 20 skipped, 3 rejected");
    assert!(from_run(Environment::Staging, &run("running")).is_empty());
    let held = |since| RunRow {
        hold_kind: Some("throttled".into()),
        hold_reason: Some("replica lag 12 s over 5 s".into()),
        hold_since: Some(since),
        ..run("running")
    };
    let first = from_run(Environment::Prod, &held(100));
    assert_eq!(first[0].event, Event::RunThrottled);
    assert_eq!(first[0].summary, "prod: backfill #7 is throttled: replica lag 12 s over 5 s");
    assert_eq!(from_run(Environment::Prod, &held(100))[0].key, first[0].key, "the same hold: the same key");
    assert_ne!(from_run(Environment::Prod, &held(200))[0].key, first[0].key, "a later hold: another");
}

#[test]
fn bodies_are_plain_json_or_slack_blocks() {
    let notice =
        from_run(Environment::Prod, &RunRow { error: Some("disk full".into()), ..run("failed") }).remove(0);
    let plain: Value = serde_json::from_str(&body(Format::Json, &notice)).unwrap();
    assert_eq!(plain["event"], "run.failed");
    assert_eq!(plain["environment"], "prod");
    assert_eq!(plain["summary"], "prod: backfill #7 failed: disk full");
    assert_eq!(plain["details"]["error"], "disk full");
    let slack: Value = serde_json::from_str(&body(Format::Slack, &notice)).unwrap();
    assert_eq!(slack["text"], "prod: backfill #7 failed: disk full");
    assert_eq!(slack["blocks"][0]["type"], "section");
    assert!(slack["blocks"][0]["text"]["text"].as_str().unwrap().contains("`run.failed`"));
}

#[test]
fn the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert_eq!(
        signature("Jefe", 0, "what do ya want for nothing?"),
        format!("t=0,v1={}", hmac_of("Jefe", "0.what do ya want for nothing?"))
    );
    assert_eq!(
        hmac_of("Jefe", "what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_ne!(signature("Jefe", 1, "x"), signature("Jefe", 2, "x"), "the timestamp is signed");
    assert_ne!(signature("Jefe", 1, "x"), signature("other", 1, "x"));
}

fn hmac_of(key: &str, data: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn retries_back_off_doubling_up_to_a_ceiling() {
    assert_eq!(backoff_ms(1), 1000);
    assert_eq!(backoff_ms(2), 2000);
    assert_eq!(backoff_ms(4), 8000);
    assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
}

#[test]
fn a_webhook_in_the_file_is_checked_before_anything_is_sent() {
    let vars: std::collections::BTreeMap<String, String> =
        [("HOOK_SECRET".to_owned(), "s3cret".to_owned())].into();
    let parse = |text: &str| toml::from_str::<WebhookFile>(text).unwrap().resolve(&vars);
    let hook = parse("url = \"https://hooks.example.com/T1\"\nsecret_env = \"HOOK_SECRET\"\nformat = \"slack\"\nevents = [\"run.failed\", \"emergency_stop\"]").unwrap();
    assert_eq!(hook.name, "hooks.example.com");
    assert_eq!(hook.secret.as_deref(), Some("s3cret"));
    assert_eq!(hook.events, vec![Event::RunFailed, Event::EmergencyStop]);
    assert!(!format!("{hook:?}").contains("s3cret"), "Debug leaves the secret out");
    assert_eq!(parse("url = \"http://127.0.0.1:9/x\"").unwrap().events, Event::ALL.to_vec());
    let error = |text| parse(text).unwrap_err();
    assert!(error("url = \"ftp://x/y\"").contains("must be http or https"));
    assert!(
        error("url = \"https://x/y\"\nevents = [\"run.exploded\"]").contains("unknown event 'run.exploded'")
    );
    assert!(error("url = \"https://x/y\"\nsecret_env = \"NOPE\"").contains("NOPE, which is not set"));
    assert!(error("url = \"https://x/y\"\nmax_attempts = 0").contains("between 1 and 50"));
}
