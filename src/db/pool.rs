//! Connecting to a database and bringing its schema up to date.

use super::url::DatabaseUrl;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

/// Which SQL dialect a database speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The database's clock in milliseconds since the Unix epoch, as SQL. Leases compare times
    /// that runners on different machines wrote, so every one of them comes from this clock.
    pub fn now_ms_sql(self) -> &'static str {
        match self {
            Self::Sqlite => "cast(round((julianday('now') - 2440587.5) * 86400000.0) as integer)",
            Self::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        }
    }
}

/// Which of our two schemas a database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// The console's own state: environments, flags, history.
    Control,
    /// An environment's application data: legacy `projects` and the two subtype tables.
    Target,
}

static CONTROL_SQLITE: Migrator = sqlx::migrate!("./migrations/control/sqlite");
static CONTROL_POSTGRES: Migrator = sqlx::migrate!("./migrations/control/postgres");
static TARGET_MIGRATIONS_SQLITE: Migrator = sqlx::migrate!("./migrations/target/sqlite");
static TARGET_MIGRATIONS_POSTGRES: Migrator = sqlx::migrate!("./migrations/target/postgres");

pub(super) fn migrator(schema: Schema, dialect: Dialect) -> &'static Migrator {
    match (schema, dialect) {
        (Schema::Control, Dialect::Sqlite) => &CONTROL_SQLITE,
        (Schema::Control, Dialect::Postgres) => &CONTROL_POSTGRES,
        (Schema::Target, Dialect::Sqlite) => &TARGET_MIGRATIONS_SQLITE,
        (Schema::Target, Dialect::Postgres) => &TARGET_MIGRATIONS_POSTGRES,
    }
}

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot migrate {url}: {source}")]
    Migrate { url: String, source: sqlx::migrate::MigrateError },
    #[error("{path} does not exist: a configured SQLite target is never created; check the path")]
    NoSuchFile { path: String },
    #[error(
        "{url} is not what the engine needs: {differences}. Nothing was changed in it; \
         `sti-rollout migrate --env {env}` says what it would change and changes it"
    )]
    Schema { env: String, url: String, differences: String },
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// What every session on a PostgreSQL target holds to: a name that says whose it is in
/// `pg_stat_activity`, and timeouts so a lock queue or a runaway statement ends in an error the
/// engine waits out instead of a stall (SQLite: nothing to set; its busy timeout plays the part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    pub application_name: String,
    pub lock_timeout_ms: i64,
    pub statement_timeout_ms: i64,
}

impl SessionSettings {
    fn sql(&self) -> String {
        // the name is ours (`sti-rollout/<env>`); quotes doubled all the same
        format!(
            "set application_name = '{}'; set lock_timeout = {}; set statement_timeout = {};",
            self.application_name.replace('\'', "''"),
            self.lock_timeout_ms.max(1),
            self.statement_timeout_ms.max(1)
        )
    }
}

/// A pool on one database, with the dialect it speaks.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    url: DatabaseUrl,
    /// What every session sets when it connects (PostgreSQL targets).
    session: Option<String>,
}

impl Database {
    /// Connects and checks the connection works; SQLite files are created when missing and put
    /// in WAL mode so the console can read while a backfill writes.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, DbError> {
        Self::connect_with(url, true, None).await
    }

    /// Connects to a database that must exist already: a SQLite file that is missing is an
    /// error, not a new empty file (a run into a deleted file "completed" into the unlinked
    /// inode, and the next command made an empty one).
    pub async fn connect_existing(url: &DatabaseUrl) -> Result<Self, DbError> {
        Self::connect_with(url, false, None).await
    }

    /// As [`Database::connect`] (`create`) or [`Database::connect_existing`], every PostgreSQL
    /// session holding to `session`.
    pub async fn connect_target(
        url: &DatabaseUrl,
        create: bool,
        session: &SessionSettings,
    ) -> Result<Self, DbError> {
        Self::connect_with(url, create, Some(session.sql())).await
    }

    async fn connect_with(url: &DatabaseUrl, create: bool, session: Option<String>) -> Result<Self, DbError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        if let (Dialect::Sqlite, false, Some(path)) = (url.dialect(), create, url.sqlite_file_path()) {
            if !path.exists() {
                return Err(DbError::NoSuchFile { path: path.display().to_string() });
            }
        }
        let connect_error = |source| DbError::Connect { url: url.to_string(), source };
        let kept = session.clone();
        let options = AnyConnectOptions::from_str(&connect_url(url, create)).map_err(connect_error)?;
        // one plain attempt first: the pool would retry a refused connection until its timeout
        let probe = options.connect().await.map_err(connect_error)?;
        let _ = probe.close().await;
        let dialect = url.dialect();
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let session = session.clone();
                Box::pin(async move {
                    match (dialect, session) {
                        (Dialect::Sqlite, _) => {
                            conn.execute("pragma journal_mode = wal; pragma synchronous = normal;").await?;
                        }
                        (Dialect::Postgres, Some(session)) => {
                            conn.execute(session.as_str()).await?;
                        }
                        (Dialect::Postgres, None) => {}
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Self { pool, url: url.clone(), session: kept })
    }

    /// Connects and applies the migrations of `schema`.
    pub async fn open(url: &DatabaseUrl, schema: Schema) -> Result<Self, DbError> {
        let db = Self::connect(url).await?;
        db.migrate(schema).await?;
        Ok(db)
    }

    /// As [`Database::open`] for a target whose sessions hold to `session`.
    pub async fn open_target(url: &DatabaseUrl, session: &SessionSettings) -> Result<Self, DbError> {
        let db = Self::connect_target(url, true, session).await?;
        db.migrate(Schema::Target).await?;
        Ok(db)
    }

    /// Applies the pending migrations of `schema` for this database's dialect.
    pub async fn migrate(&self, schema: Schema) -> Result<(), DbError> {
        let migrator = migrator(schema, self.dialect());
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| DbError::Migrate { url: self.url.to_string(), source })
    }

    /// As [`Database::migrate`], on one connection whose lock waits end after `lock_timeout`
    /// (PostgreSQL; SQLite's busy timeout plays that part): a `create table … references
    /// projects` queued behind an application's open transaction would otherwise block every
    /// later insert into projects for as long as it waits.
    pub async fn migrate_with_lock_timeout(
        &self,
        schema: Schema,
        lock_timeout: Duration,
    ) -> Result<(), DbError> {
        let migrator = migrator(schema, self.dialect());
        let mut conn = self.pool.acquire().await?;
        if self.dialect() == Dialect::Postgres {
            // a migration may take long (an index on a big table); only its lock waits are cut short
            conn.execute(
                format!("set lock_timeout = {}; set statement_timeout = 0", lock_timeout.as_millis().max(1))
                    .as_str(),
            )
            .await?;
        }
        let result = migrator
            .run(&mut *conn)
            .await
            .map_err(|source| DbError::Migrate { url: self.url.to_string(), source });
        let restore =
            format!("reset lock_timeout; reset statement_timeout; {}", self.session.as_deref().unwrap_or(""));
        if self.dialect() == Dialect::Postgres && conn.execute(restore.as_str()).await.is_err() {
            conn.detach(); // never hand a connection with a changed setting back to the pool
        }
        result
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
    /// taken at the start, where the busy timeout waits for it, instead of at the first write of a
    /// transaction that has already read — there SQLite answers "database is locked" at once
    /// whenever another connection committed in between, and no timeout helps.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect() {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.url.dialect()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite files are created when missing (`create`) unless the URL says otherwise.
fn connect_url(url: &DatabaseUrl, create: bool) -> String {
    let raw = url.expose();
    if url.dialect() != Dialect::Sqlite || raw.contains("mode=") {
        return raw.to_owned();
    }
    let separator = if raw.contains('?') { '&' } else { '?' };
    format!("{raw}{separator}mode={}", if create { "rwc" } else { "rw" })
}
