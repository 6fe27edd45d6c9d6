//! The torture test (issue 14): a 200 000-row backfill in small chunks while a writer inserts,
//! updates (changing study types, making rows dirty and clean again) and deletes legacy rows at
//! a steady rate, half through raw SQL and half through `/api/projects`; the runner is killed
//! -9 and resumed twice, and on PostgreSQL the server is stopped (`pg_ctl stop -m fast`) and
//! started twice. After one reconcile, the tables must be exactly what the rule and the
//! writer's last writes say. The test prints its counts and fails if any is off.
//!
//! PostgreSQL runs on a cluster of its own (`STI_TORTURE_PG_URL`, restarted with
//! `STI_TORTURE_PG_CTL stop|start`), which `scripts/test.sh` starts for it.

use crate::support::{browser, cli, open, spawn_cli_logged, stderr, stdout, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sti_rollout::db::seed::{seed, SeedMode};
use sti_rollout::db::{Database, DatabaseUrl, Schema};
use sti_rollout::domain::access::Scope;
use sti_rollout::domain::environment::Environment;
use sti_rollout::domain::study_type::{identify, normalised_pace, LegacyFields, StudyType};
use sti_rollout::server::config::Config;

const ROWS: i64 = 200_000;
/// Raw inserts take ids from here (past every seeded id, so past the run's frozen bound).
const INSERTED_FROM: i64 = 500_000;

/// What the writer last wrote into a row's legacy columns (`None`: it deleted the row).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Legacy {
    project_type: Option<String>,
    school_name: Option<String>,
    grade: Option<i64>,
    pace: Option<String>,
    goal_date: Option<String>,
}

/// A small deterministic generator: the same writes in every run of the test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Torture {
    backend: Backend,
    dir: tempfile::TempDir,
    vars: BTreeMap<String, String>,
    target: Database,
    /// The application's own connection: on PostgreSQL its least-privilege role.
    app_target: Database,
    control: Database,
    app: TestApp,
    key: String,
    pg_ctl: Option<String>,
}

impl Torture {
    async fn set_up(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (target_url, pg_ctl) = match backend {
            Backend::Sqlite => (DatabaseUrl::sqlite_file(&dir.path().join("dev.db")), None),
            Backend::Postgres => {
                let admin = std::env::var("STI_TORTURE_PG_URL").expect(
                    "STI_TORTURE_PG_URL must name the torture test's own PostgreSQL cluster; scripts/test.sh starts it",
                );
                let ctl = std::env::var("STI_TORTURE_PG_CTL")
                    .expect("STI_TORTURE_PG_CTL (scripts/test.sh sets it)");
                let server = Database::connect(&DatabaseUrl::parse(&admin).unwrap()).await.unwrap();
                let name = format!("torture_{}", std::process::id());
                sqlx::query(&format!("drop database if exists {name}")).execute(server.pool()).await.unwrap();
                sqlx::query(&format!("create database {name}")).execute(server.pool()).await.unwrap();
                server.close().await;
                let (base, _) = admin.rsplit_once('/').unwrap();
                (DatabaseUrl::parse(&format!("{base}/{name}")).unwrap(), Some(ctl))
            }
        };
        let target = open(&target_url, Schema::Target).await;
        // the application writes as its own role, granted only what it uses (issue 28)
        let app_target = match backend {
            Backend::Sqlite => target.clone(),
            Backend::Postgres => {
                let role = format!("torture_app_{}", std::process::id());
                sqlx::query(&format!(
                    "do $$ begin create role {role} login; exception when duplicate_object then null; end $$"
                ))
                .execute(target.pool())
                .await
                .unwrap();
                sqlx::query(&format!(
                    "grant select, insert, update, delete on projects, school_projects, self_study_projects to {role}"
                ))
                .execute(target.pool())
                .await
                .unwrap();
                let url = target_url.expose().replacen("postgres@", &format!("{role}@"), 1);
                assert!(url.contains(&role), "the torture cluster's URL names its user");
                Database::connect(&DatabaseUrl::parse(&url).unwrap()).await.unwrap()
            }
        };
        let started = Instant::now();
        seed(&target, ROWS, SeedMode::Fresh, |_, _| {}).await.unwrap();
        eprintln!("torture ({backend:?}): seeded {ROWS} rows in {:.1} s", started.elapsed().as_secs_f64());

        let file = dir.path().join("sti.toml");
        let control_url = DatabaseUrl::sqlite_file(&data.join("control.db"));
        std::fs::write(
            &file,
            format!(
                "control = {control:?}\n[environments]\ndev = {dev:?}\n\
                 [policy.dev.retry]\nfirst_backoff_ms = 100\nmax_backoff_ms = 1000\n\
                 [policy.dev.session]\nlock_timeout_ms = 2000\n[demo_rows]\nstaging = 10\nprod = 10\n",
                control = control_url.expose(),
                dev = target_url.expose(),
            ),
        )
        .unwrap();
        let config = Config::load_with(&data, Some(&file), &BTreeMap::new()).unwrap();
        let app = TestApp::start(&config).await;
        let control = open(&config.control, Schema::Control).await;
        let key = sti_rollout::db::api_keys::create(&control, Environment::Dev, Scope::Write, "torture")
            .await
            .unwrap()
            .1;
        let vars = BTreeMap::from([
            ("STI_CONFIG".to_owned(), file.display().to_string()),
            ("STI_DATA_DIR".to_owned(), data.display().to_string()),
        ]);
        Torture { backend, dir, vars, target, app_target, control, app, key, pg_ctl }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("runner.log")
    }

    fn runner(&self) -> Child {
        spawn_cli_logged(
            &["backfill", "--env", "dev", "--chunk", "500", "--pause-ms", "30"],
            &self.vars,
            &self.log(),
        )
    }

    /// How far the run's checkpoint is through the seeded ids, when the target answers (the
    /// rows the writer inserts lie far beyond them).
    async fn progress(&self) -> Option<f64> {
        let checkpoint: Option<i64> = sqlx::query_scalar(
            "select checkpoint from sti_backfill_runs where kind = 'backfill' order by id desc limit 1",
        )
        .fetch_optional(self.target.pool())
        .await
        .ok()
        .flatten();
        checkpoint.map(|c| c as f64 / ROWS as f64)
    }

    async fn wait_for(&self, share: f64, runner: &mut Child) {
        let until = Instant::now() + Duration::from_secs(240);
        loop {
            if self.progress().await.is_some_and(|p| p >= share) {
                return;
            }
            if let Some(status) = runner.try_wait().unwrap() {
                panic!(
                    "the runner ended early ({status}): {}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(Instant::now() < until, "the run did not reach {:.0}% in 4 minutes", share * 100.0);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pg_ctl(&self, action: &str) {
        let ctl = self.pg_ctl.as_ref().unwrap();
        let status =
            std::process::Command::new("sh").arg("-c").arg(format!("{ctl} {action}")).status().unwrap();
        assert!(status.success(), "pg_ctl {action} failed");
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        cli(args, &self.vars)
    }
}

/// The writer: one write every 25 ms, alternately raw SQL and `/api/projects`; a write that
/// fails (the database restarting) is tried again until it is acknowledged, so the writer knows
/// the last write of every row it touched.
struct Writer {
    target: Database,
    address: String,
    key: String,
    client: reqwest::Client,
    rng: Rng,
    written: HashMap<i64, Option<Legacy>>,
    inserted: Vec<i64>,
    next_insert: i64,
    raw: u64,
    api: u64,
    retried: u64,
    uncertain_creates: u64,
}

fn school(name: String, grade: i64, spelling: &str) -> Legacy {
    Legacy {
        project_type: Some(spelling.into()),
        school_name: Some(name),
        grade: Some(grade),
        pace: None,
        goal_date: None,
    }
}

fn self_study(pace: Option<&str>, goal: Option<&str>, spelling: &str) -> Legacy {
    Legacy {
        project_type: Some(spelling.into()),
        school_name: None,
        grade: None,
        pace: pace.map(Into::into),
        goal_date: goal.map(Into::into),
    }
}

impl Writer {
    fn some_id(&mut self) -> i64 {
        if !self.inserted.is_empty() && self.rng.below(4) == 0 {
            *self.rng.pick(&self.inserted)
        } else {
            1 + self.rng.below(ROWS as u64) as i64
        }
    }

    /// What a raw write sets: a clean school or self-study row in one of the legacy spellings,
    /// or a dirty one.
    fn legacy_value(&mut self, n: u64) -> Legacy {
        match self.rng.below(10) {
            0..=3 => school(
                format!("Torture High {n}"),
                1 + self.rng.below(13) as i64,
                self.rng.pick::<&str>(&["school", "School", " school "]),
            ),
            4..=6 => self_study(
                *self.rng.pick(&[Some("relaxed"), Some(" Intensive "), None]),
                *self.rng.pick(&[None, Some("2027-03-01")]),
                self.rng.pick::<&str>(&["self-study", "self_study", "Self Study"]),
            ),
            7 => school(format!("Out Of Range {n}"), 42, "school"),
            8 => Legacy { school_name: None, ..school(String::new(), 3, "school") },
            _ => Legacy { project_type: None, school_name: None, grade: None, pace: None, goal_date: None },
        }
    }

    async fn raw(&mut self, sql: &str, values: &Legacy) -> Result<u64, sqlx::Error> {
        let goal = match self.target.dialect() {
            sti_rollout::db::Dialect::Postgres => "cast($5 as date)",
            sti_rollout::db::Dialect::Sqlite => "$5",
        };
        let sql = sql.replace("{goal}", goal);
        sqlx::query(&sql)
            .bind(values.project_type.as_deref())
            .bind(values.school_name.as_deref())
            .bind(values.grade)
            .bind(values.pace.as_deref())
            .bind(values.goal_date.as_deref())
            .execute(self.target.pool())
            .await
            .map(|r| r.rows_affected())
    }

    /// One write, tried until it is acknowledged.
    async fn write(&mut self, n: u64) {
        let via_api = n % 2 == 1;
        let choice = self.rng.below(10);
        let id = self.some_id();
        let until = Instant::now() + Duration::from_secs(90);
        let value = self.legacy_value(n);
        let api_value = match self.rng.below(2) {
            0 => school(format!("Api High {n}"), 1 + self.rng.below(13) as i64, "school"),
            _ => self_study(
                Some(*self.rng.pick(&["relaxed", "regular", "intensive"])),
                Some("2027-06-30"),
                "self_study",
            ),
        };
        loop {
            let done = if via_api {
                self.api_write(choice, id, &api_value, n).await
            } else {
                self.raw_write(choice, id, &value).await
            };
            match done {
                Ok(()) => return,
                Err(error) => {
                    assert!(Instant::now() < until, "a write failed for 90 s: {error}");
                    self.retried += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn raw_write(&mut self, choice: u64, id: i64, value: &Legacy) -> Result<(), String> {
        let e = |e: sqlx::Error| e.to_string();
        match choice {
            0..=5 => {
                let sql = format!(
                    "update projects set project_type = $1, school_name = $2, grade = $3, pace = $4, goal_date = {{goal}} where id = {id}"
                );
                let affected = self.raw(&sql, value).await.map_err(e)?;
                self.written.insert(id, (affected == 1).then(|| value.clone()));
            }
            6 => {
                sqlx::query(&format!("delete from projects where id = {id}"))
                    .execute(self.target.pool())
                    .await
                    .map_err(e)?;
                self.written.insert(id, None);
            }
            _ => {
                let new_id = self.next_insert;
                let sql = format!(
                    "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
                     values ({new_id}, 'inserted', 7, $1, $2, $3, $4, {{goal}}, '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z')
                     on conflict (id) do update set project_type = excluded.project_type, school_name = excluded.school_name,
                         grade = excluded.grade, pace = excluded.pace, goal_date = excluded.goal_date"
                );
                self.raw(&sql, value).await.map_err(e)?;
                self.next_insert += 1;
                self.inserted.push(new_id);
                self.written.insert(new_id, Some(value.clone()));
            }
        }
        self.raw += 1;
        Ok(())
    }

    async fn api_write(&mut self, choice: u64, id: i64, value: &Legacy, n: u64) -> Result<(), String> {
        let body = match value.project_type.as_deref() {
            Some("school") => json!({"study_type": "school", "title": format!("api {n}"), "owner_id": 9,
                "school_name": value.school_name, "grade": value.grade}),
            _ => json!({"study_type": "self_study", "title": format!("api {n}"), "owner_id": 9,
                "pace": value.pace, "goal_date": value.goal_date}),
        };
        let url = |path: &str| format!("{}{path}", self.address);
        let request = match choice {
            0..=5 => self.client.put(url(&format!("/api/projects/{id}"))).json(&body),
            6 => self.client.delete(url(&format!("/api/projects/{id}"))),
            _ => self.client.post(url("/api/projects")).json(&body),
        };
        let response = request.bearer_auth(&self.key).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match (choice, status) {
            (0..=5, StatusCode::OK) => {
                self.written.insert(id, Some(value.clone()));
            }
            (0..=6, StatusCode::NOT_FOUND) => {
                self.written.insert(id, None);
            }
            (6, StatusCode::NO_CONTENT | StatusCode::OK) => {
                self.written.insert(id, None);
            }
            (7.., StatusCode::CREATED) => {
                let created: serde_json::Value = serde_json::from_str(&text).unwrap();
                let new_id = created["id"].as_i64().unwrap();
                self.inserted.push(new_id);
                self.written.insert(new_id, Some(value.clone()));
            }
            (_, s) if s.is_server_error() => {
                if choice >= 7 {
                    // a create whose answer was lost may have happened: not tried twice
                    self.uncertain_creates += 1;
                    self.api += 1;
                    return Ok(());
                }
                return Err(format!("{s}: {text}"));
            }
            (_, s) => panic!("the API refused a valid write ({s}): {text}"),
        }
        self.api += 1;
        Ok(())
    }
}

/// The legacy rows, the subtype rows and the dead letters, read back.
struct Tables {
    legacy: BTreeMap<i64, (Legacy, String)>,
    school: BTreeMap<i64, (String, Option<i64>, String)>,
    self_study: BTreeMap<i64, (Option<String>, Option<String>, String)>,
    dead: BTreeSet<i64>,
}

async fn read_tables(db: &Database) -> Tables {
    let rows = sqlx::query_as::<_, (i64, Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>, String)>(
        "select id, project_type, school_name, cast(grade as bigint), pace, cast(goal_date as text), cast(created_at as text) from projects",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let legacy = rows
        .into_iter()
        .map(|(id, project_type, school_name, grade, pace, goal_date, created)| {
            (id, (Legacy { project_type, school_name, grade, pace, goal_date }, created))
        })
        .collect();
    let school = sqlx::query_as::<_, (i64, String, Option<i64>, String)>(
        "select project_id, school_name, cast(grade as bigint), cast(created_at as text) from school_projects",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(id, name, grade, created)| (id, (name, grade, created)))
    .collect();
    let self_study = sqlx::query_as::<_, (i64, Option<String>, Option<String>, String)>(
        "select project_id, pace, cast(goal_date as text), cast(created_at as text) from self_study_projects",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(id, pace, goal, created)| (id, (pace, goal, created)))
    .collect();
    let dead = sqlx::query_scalar::<_, i64>("select distinct project_id from sti_backfill_dead_letters")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    Tables { legacy, school, self_study, dead }
}

/// Every check of the end state; each failure is one line.
fn check_tables(
    t: &Tables,
    written: &HashMap<i64, Option<Legacy>>,
) -> (Vec<String>, BTreeMap<&'static str, usize>) {
    let mut failures = Vec::new();
    let mut counts = BTreeMap::from([
        ("legacy rows", t.legacy.len()),
        ("school rows", t.school.len()),
        ("self-study rows", t.self_study.len()),
        ("dirty rows", 0),
        ("rows the writer touched", written.len()),
    ]);
    for (id, (row, created)) in &t.legacy {
        let fields = LegacyFields {
            project_type: row.project_type.as_deref(),
            school_name: row.school_name.as_deref(),
            grade: row.grade,
            pace: row.pace.as_deref(),
        };
        let (school, self_study) = (t.school.get(id), t.self_study.get(id));
        match identify(&fields) {
            Ok(StudyType::School) => {
                let expected = (row.school_name.clone().unwrap_or_default(), row.grade, created.clone());
                if school != Some(&expected) || self_study.is_some() {
                    failures.push(format!("row {id} is a school row {expected:?}; the subtype tables hold {school:?} / {self_study:?}"));
                }
            }
            Ok(StudyType::SelfStudy) => {
                let expected = (
                    normalised_pace(row.pace.as_deref()).map(str::to_owned),
                    row.goal_date.clone(),
                    created.clone(),
                );
                if self_study != Some(&expected) || school.is_some() {
                    failures.push(format!("row {id} is a self-study row {expected:?}; the subtype tables hold {school:?} / {self_study:?}"));
                }
            }
            Err(_) => {
                *counts.get_mut("dirty rows").unwrap() += 1;
                if school.is_some() || self_study.is_some() {
                    failures.push(format!("dirty row {id} has a subtype row: {school:?} / {self_study:?}"));
                }
                if !t.dead.contains(id) {
                    failures.push(format!("dirty row {id} is no dead letter"));
                }
            }
        }
    }
    for id in t.school.keys().chain(t.self_study.keys()) {
        if !t.legacy.contains_key(id) {
            failures.push(format!("subtype row {id} has no legacy row"));
        }
    }
    for (id, last) in written {
        let held = t.legacy.get(id).map(|(row, _)| row);
        let wanted = last.as_ref();
        // a legacy spelling is stored as written; an API write stores the canonical type
        if held != wanted {
            failures.push(format!("row {id}: the writer last wrote {wanted:?}, the table holds {held:?}"));
        }
    }
    (failures, counts)
}

/// A ledger row: from, to, rows read, created, skipped, rejected.
type LedgerRow = (i64, i64, i64, i64, i64, i64);

async fn torture(backend: Backend) {
    let t = Torture::set_up(backend).await;
    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = Writer {
        target: t.app_target.clone(),
        address: t.app.address.clone(),
        key: t.key.clone(),
        client: browser(),
        rng: Rng(0x5eed_1234_abcd_0001),
        written: HashMap::new(),
        inserted: Vec::new(),
        next_insert: INSERTED_FROM,
        raw: 0,
        api: 0,
        retried: 0,
        uncertain_creates: 0,
    };
    let stopping = stop.clone();
    let writing = tokio::spawn(async move {
        let mut n = 0_u64;
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        while !stopping.load(Ordering::Relaxed) {
            tick.tick().await;
            writer.write(n).await;
            n += 1;
        }
        writer
    });

    let mut runner = t.runner();
    let mut kills = 0;
    let mut restarts = 0;
    let mut saw_waiting = false;
    for (share, event) in [(0.10, "kill"), (0.25, "restart"), (0.45, "kill"), (0.65, "restart")] {
        t.wait_for(share, &mut runner).await;
        match event {
            "kill" => {
                runner.kill().unwrap(); // SIGKILL
                runner.wait().unwrap();
                kills += 1;
                runner = t.runner();
            }
            _ if t.pg_ctl.is_some() => {
                t.pg_ctl("stop");
                let down = Instant::now();
                while down.elapsed() < Duration::from_secs(3) {
                    let hold: Option<Option<String>> =
                        sqlx::query_scalar("select hold_kind from runs order by run_id desc limit 1")
                            .fetch_optional(t.control.pool())
                            .await
                            .unwrap();
                    saw_waiting |= hold.flatten().as_deref() == Some("waiting");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                t.pg_ctl("start");
                restarts += 1;
            }
            _ => {}
        }
    }
    let status = tokio::task::spawn_blocking(move || runner.wait().unwrap()).await.unwrap();
    let log = std::fs::read_to_string(t.log()).unwrap_or_default();
    assert!(status.success(), "the runner failed: {log}");
    stop.store(true, Ordering::Relaxed);
    let writer = writing.await.unwrap();
    let ran = began.elapsed().as_secs_f64();

    let first = t.cli(&["verify", "--env", "dev"]);
    let mut reconciled = 0;
    if !first.status.success() {
        let out = t.cli(&["reconcile", "--env", "dev"]);
        assert!(out.status.success(), "reconcile failed: {}", stderr(&out));
        let run = sti_rollout::engine::runs::list(&t.target, 1).await.unwrap().remove(0);
        reconciled = run.rows_read;
    }
    let last = t.cli(&["verify", "--env", "dev"]);
    assert!(last.status.success(), "verify after one reconcile: {}{}", stdout(&last), stderr(&last));

    let tables = read_tables(&t.target).await;
    let (failures, counts) = check_tables(&tables, &writer.written);

    // the backfill's counts add up: the ledger covers its range once and sums to its counters
    let runs = sti_rollout::engine::runs::list(&t.target, 10).await.unwrap();
    let backfills: Vec<_> =
        runs.iter().filter(|r| r.kind == sti_rollout::domain::run::RunKind::Backfill).collect();
    assert_eq!(backfills.len(), 1, "the kills and restarts were one run, taken over: {runs:?}");
    let run = backfills[0];
    let ledger = sqlx::query_as::<_, LedgerRow>(&format!(
        "select from_id, to_id, rows_read, school_created + self_study_created, school_skipped + self_study_skipped, errors
         from sti_backfill_chunks where run_id = {} order by chunk_no",
        run.id
    ))
    .fetch_all(t.target.pool())
    .await
    .unwrap();
    let mut at = run.low_id;
    for (from, to, ..) in &ledger {
        assert_eq!(*from, at, "the ledger has a gap or an overlap at {at}");
        at = *to;
    }
    assert_eq!(at, run.high_id, "the ledger reaches the frozen bound");
    let sum = |f: fn(&LedgerRow) -> i64| ledger.iter().map(f).sum::<i64>();
    assert_eq!(
        (sum(|c| c.2), sum(|c| c.3), sum(|c| c.4), sum(|c| c.5), ledger.len() as i64),
        (run.rows_read, run.created(), run.skipped(), run.errors, run.chunks),
        "the run's counters are its ledger's sums"
    );

    eprintln!(
        "torture ({backend:?}) in {ran:.0} s: {} writes ({} raw SQL, {} API; {} tried again, {} creates unanswered), \
         {kills} kills -9, {restarts} database restarts{}; run #{}: {} chunks, {} rows read, {} created, {} skipped, {} rejected; \
         reconciled {reconciled} ids; {counts:?}; {} failures",
        writer.raw + writer.api,
        writer.raw,
        writer.api,
        writer.retried,
        writer.uncertain_creates,
        if saw_waiting { " (the console saw the run waiting)" } else { " (met within the pool's acquire timeout)" },
        run.id,
        run.chunks,
        run.rows_read,
        run.created(),
        run.skipped(),
        run.errors,
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "{} failures, the first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    assert!(writer.raw > 100 && writer.api > 100, "the writer wrote steadily");
    assert_eq!(kills, 2);
    if t.backend == Backend::Postgres {
        // (whether the runner met the restart as an error it waited out, or as a connection
        // that came within the pool's acquire timeout, depends on where in a chunk it was: the
        // page shows the wait in the first case; both end with the run completed, checked above)
        assert_eq!(restarts, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_torture_a_backfill_under_live_writes_and_kills_converges() {
    torture(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_torture_a_backfill_under_live_writes_restarts_and_kills_converges() {
    torture(Backend::Postgres).await;
}
