//! Test support for every crate's tests: a fresh database per test, on SQLite always and on
//! PostgreSQL when `NUMLINK_TEST_PG` names a server (a throwaway cluster that `cargo xtask test`
//! starts). Without it the PostgreSQL half of each test says it was skipped; with
//! `NUMLINK_TEST_PG_REQUIRED=1` (CI) a missing server fails the test instead.

use std::sync::Arc;

use domain::{Day, FixedClock};

use crate::{DbUrl, HashKey, Store, StoreConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database; the SQLite file is removed when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: DbUrl,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = DbUrl::Sqlite(dir.path().join("numlink.db"));
        TestDb { url, backend: Backend::Sqlite, _dir: Some(dir) }
    }

    /// A new database on the test PostgreSQL server, or `None` (with a note on stderr) if there is none.
    pub fn postgres() -> Option<TestDb> {
        let Ok(admin) = std::env::var("NUMLINK_TEST_PG") else {
            if std::env::var("NUMLINK_TEST_PG_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("NUMLINK_TEST_PG_REQUIRED=1 but NUMLINK_TEST_PG is not set: the PostgreSQL tests must run");
            }
            eprintln!(
                "skipped on PostgreSQL: NUMLINK_TEST_PG is not set (run `cargo xtask test` to start a throwaway cluster)"
            );
            return None;
        };
        let name = format!("t_{}", hex::encode(crate::keys::random_bytes::<8>()));
        pg_batch(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(TestDb { url: DbUrl::Postgres(format!("{base}/{name}")), backend: Backend::Postgres, _dir: None })
    }

    pub fn get(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres(),
        }
    }

    /// Builds the schema as the numlink of migration `version` left it, without opening a store: an
    /// upgrade test fills it with that numlink's rows, then opens a store, which migrates the rest.
    pub fn migrate_to(&self, version: i64) {
        let url = self.url.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut conn = crate::connect_writer(&url).expect("connect to the test database");
                crate::migrate::run_to(conn.as_mut(), Some(version)).expect("migrate the test database");
            })
            .join()
            .expect("migration thread")
        });
    }

    /// The same database, for a second process's store (a second node): it does not own the file,
    /// which goes when this one is dropped.
    pub fn beside(&self) -> TestDb {
        TestDb { url: self.url.clone(), backend: self.backend, _dir: None }
    }

    /// Runs SQL statements on this database directly, as another program might (a test's way to put
    /// the database in a state numlink would reach only by a long road).
    pub fn exec(&self, sql: &str) {
        let url = self.url.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut conn = crate::connect_writer(&url).expect("connect to the test database");
                conn.batch(sql).expect("run test SQL");
            })
            .join()
            .expect("test SQL thread")
        });
    }

    /// The first column of each row `sql` selects, as text.
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        let url = self.url.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut conn = crate::connect_writer(&url).expect("connect to the test database");
                let rows = conn.query(sql, &[]).expect("run test SQL");
                rows.iter().map(|r| r.text(0).expect("a text column")).collect()
            })
            .join()
            .expect("test SQL thread")
        })
    }

    /// Opens a store on this database with a fixed clock standing on `today`.
    pub fn open(&self, today: &str) -> (Store, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::at_day(Day::parse(today).expect("a valid test date")));
        (self.open_with(clock.clone()), clock)
    }

    pub fn open_with(&self, clock: Arc<FixedClock>) -> Store {
        let config = StoreConfig::new(self.url.clone(), test_hash_key(), clock);
        Store::open(config).expect("open the test store")
    }

    /// Opens a store whose writer leaves the lookups table alone until `Store::compact_lookups`, and
    /// notifications unfiled until `Store::file_notifications` (or `NOTIFICATIONS_WAITING_MAX` wait).
    pub fn open_without_idle_upkeep(&self, clock: Arc<FixedClock>) -> Store {
        let mut config = StoreConfig::new(self.url.clone(), test_hash_key(), clock);
        config.upkeep_when_idle = false;
        Store::open(config).expect("open the test store")
    }

    /// Opens a store whose configuration `configure` has changed.
    pub fn open_configured(&self, clock: Arc<FixedClock>, configure: impl FnOnce(&mut StoreConfig)) -> Store {
        let mut config = StoreConfig::new(self.url.clone(), test_hash_key(), clock);
        configure(&mut config);
        Store::open(config).expect("open the test store")
    }

    /// Opens a store without the in-memory index, as the CLI's short-lived commands do.
    pub fn open_without_index(&self, clock: Arc<FixedClock>) -> Store {
        let mut config = StoreConfig::new(self.url.clone(), test_hash_key(), clock);
        config.build_index = false;
        Store::open(config).expect("open the test store")
    }
}

/// Runs SQL on a PostgreSQL server from any thread (the blocking client cannot run on a runtime's
/// own threads).
pub fn pg_batch(url: &str, sql: &str) {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect to the test PostgreSQL");
            client.batch_execute(sql).expect("run test SQL");
        })
        .join()
        .expect("test SQL thread")
    })
}

/// One fixed key for tests, so that a reopened store hashes alike.
pub fn test_hash_key() -> HashKey {
    HashKey::from_hex(&"ab".repeat(32)).expect("64 hex digits")
}

/// Runs an async test body once per backend: `backend_tests!(name, …)` makes, for each async `fn name(db: TestDb)`, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::testing::TestDb::sqlite()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::postgres() {
                        super::$name(db).await
                    }
                }
            }
        )*
    };
}
