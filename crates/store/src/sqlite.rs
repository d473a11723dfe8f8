//! The embedded backend: rusqlite on one file, WAL, `synchronous=FULL` so that whatever is
//! acknowledged survives a crash or power loss.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Value};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The page size of a database numlink creates.
pub const PAGE_SIZE: i64 = 16_384;

pub struct SqliteConn {
    conn: Connection,
    /// Wakes the checkpoint thread after a commit (the writer's connection only).
    checkpoint: Option<std::sync::mpsc::SyncSender<()>>,
}

impl SqliteConn {
    pub fn open(path: &Path) -> Result<SqliteConn, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::open(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // 16 KiB pages (SQLite's default is 4 KiB), for a database this creates: fewer levels and
        // fewer splits in the B-trees that take a carrier's whole base (lifecycle files +8%; binding
        // files +25%; notifications unchanged: `cargo xtask bench`). A database created before keeps
        // its page size (WAL does not change it).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // WAL lets readers run beside the one writer; FULL makes every commit durable.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // `temp_store` stays at its default: SQLite keeps a savepoint's journal in memory up to 64 KiB
        // and spills it to a temporary file beyond. Kept wholly in memory (`temp_store = MEMORY`), the
        // journal of a large command (a file's chunk) is a list of 1 KiB pieces that SQLite walks from
        // the start at the end of every statement needing a statement journal: a chunk of 10,000
        // disconnections of bound numbers went from 13.6 s to 188.7 s (`cargo xtask bench --only fanout
        // --bindings 200000`).
        // 16 MiB of page cache (the default is 2 MiB); the writer's connection takes more (`open_writer`).
        conn.pragma_update(None, "cache_size", -16_384)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteConn { conn, checkpoint: None })
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::I64(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::I32(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
            Value::I16(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // A full disk is worth a retry: the transaction was rolled back, and writes go on once there
        // is room again.
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::DiskFull
        {
            return StoreError::Unavailable { reason: DISK_FULL.into() };
        }
        StoreError::Database { message: e.to_string(), source: Some(Box::new(e)) }
    }
}

/// Why a write was refused when the database's disk is full.
pub(crate) const DISK_FULL: &str =
    "the database's disk is full: nothing of this write was kept; send it again once there is room";

/// SQLite numbers `$N` parameters in the order they first appear in the text, not by N: a statement
/// must name them `$1, $2, …` in that order, or values land in the wrong places (PostgreSQL, which
/// reads N, would not notice). Checked in debug builds, which every test runs.
fn placeholders_in_order(sql: &str) -> bool {
    let mut seen = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if let Ok(n) = sql[start..j].parse::<usize>()
                && !seen.contains(&n)
            {
                seen.push(n);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    seen.iter().enumerate().all(|(k, n)| *n == k + 1)
}

impl Conn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        debug_assert!(placeholders_in_order(sql), "parameters out of order: {sql}");
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn insert_seq(&mut self, sql: &str, params: &[Value]) -> Result<Option<i64>, StoreError> {
        Ok(match self.exec(sql, params)? {
            0 => None,
            _ => Some(self.conn.last_insert_rowid()),
        })
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.query_each(sql, params, &mut |r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        debug_assert!(placeholders_in_order(sql), "parameters out of order: {sql}");
        let mut stmt = self.conn.prepare_cached(sql)?;
        let cols = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut row = Row(Vec::with_capacity(cols));
        while let Some(r) = rows.next()? {
            row.0.clear();
            for i in 0..cols {
                row.0.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::I64(v),
                    ValueRef::Real(v) => Value::Text(v.to_string()),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                });
            }
            f(&row)?;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN IMMEDIATE")
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT")?;
        if let Some(wake) = &self.checkpoint {
            // Full: the thread has a wake-up pending already, which covers this commit too.
            let _ = wake.try_send(());
        }
        Ok(())
    }
}

/// The WAL's size at which the writer checkpoints by itself, when the checkpoint thread has fallen
/// behind (SQLite's default is 1,000 pages: at 10,000 events a chunk commits about 250 pages of 4 KiB,
/// and the writer spent 8% of its time and a disk flush every fourth commit copying them back); also
/// the size the WAL file is cut back to after a checkpoint.
const WAL_BYTES_MAX: i64 = 64 << 20;
/// How much of the database file the writer reads through a memory map (SQLite caps it at 2 GiB as
/// built). Mapped pages are the kernel's page cache, shared, and dropped under memory pressure.
const WRITER_MMAP_BYTES: i64 = 2 << 30;

/// How long an idle checkpoint thread waits before it tries again to finish a checkpoint a reader held
/// back.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// The least time between two checkpoints: a checkpoint flushes the database file, and audited checks
/// commit a thousand times a second (one after each commit cost a third of the CAMARA check's
/// throughput: `cargo xtask bench --only http`).
const CHECKPOINT_INTERVAL_MIN: Duration = Duration::from_millis(100);

impl SqliteConn {
    /// The writer's connection: its commits wake a checkpoint thread of its own, which copies the WAL
    /// back into the database beside it (PASSIVE: it waits for nobody and copies what no reader still
    /// needs; one a reader held back is tried again when idle). A checkpoint that has copied every frame
    /// before the next write transaction begins lets it restart the WAL from its start; under a burst it
    /// may not, and the writer checkpoints by itself once the WAL reaches [`WAL_BYTES_MAX`]. The
    /// thread ends with the connection.
    pub(crate) fn open_writer(path: &Path) -> Result<SqliteConn, StoreError> {
        let mut conn = SqliteConn::open(path)?;
        let page = conn.conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?.max(512);
        conn.conn.pragma_update(None, "wal_autocheckpoint", WAL_BYTES_MAX / page)?;
        conn.conn.pragma_update(None, "journal_size_limit", WAL_BYTES_MAX)?;
        // 64 MiB of page cache: more of the B-trees a file's events go into stay in memory (lifecycle
        // files +5% at 3,000,000 events; the readers keep 16 MiB each).
        conn.conn.pragma_update(None, "cache_size", -65_536)?;
        // Pages read through a memory map, not copied in by a read call: a fan-out reads bindings and
        // their index at random pages, and the copies took 17% of the writer's time (a disconnection
        // file touching 1,000,000 bindings: 25,952 notifications/s before, 36,829 after). SQLite maps
        // at most 2 GiB of the file as built; pages beyond are read as before.
        conn.conn.pragma_update(None, "mmap_size", WRITER_MMAP_BYTES)?;
        let checkpointer = SqliteConn::open(path)?;
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("numlink-checkpoint".into())
            .spawn(move || {
                let mut behind = false;
                // Logged once a failing spell (a full disk fails every try until there is room).
                let mut failing = false;
                let mut last = std::time::Instant::now();
                loop {
                    // Commits meanwhile leave one wake-up in the channel.
                    if let Some(wait) = CHECKPOINT_INTERVAL_MIN.checked_sub(last.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    match woken.recv_timeout(CHECKPOINT_RETRY) {
                        Ok(()) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) if behind => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    last = std::time::Instant::now();
                    // (busy, frames in the WAL, frames copied)
                    match checkpointer.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    }) {
                        Ok((frames, copied)) => {
                            behind = copied < frames;
                            if std::mem::take(&mut failing) {
                                tracing::info!("WAL checkpoints succeed again");
                            }
                        }
                        Err(e) => {
                            behind = true;
                            if !std::mem::replace(&mut failing, true) {
                                tracing::warn!(error = %e, "WAL checkpoint failed; retried until it succeeds");
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::open(format!("cannot start the checkpoint thread: {e}")))?;
        conn.checkpoint = Some(wake);
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::Conn;

    fn page_size(conn: &mut super::SqliteConn) -> i64 {
        conn.query_one("PRAGMA page_size", &[]).unwrap().unwrap().i64(0).unwrap()
    }

    #[test]
    fn a_new_database_gets_large_pages_and_an_old_one_keeps_its_own() {
        let dir = std::env::temp_dir().join(format!("numlink-page-size-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.db");
        let mut conn = super::SqliteConn::open(&new).unwrap();
        conn.batch("CREATE TABLE t (x INTEGER)").unwrap();
        assert_eq!(page_size(&mut conn), super::PAGE_SIZE);
        // Created by an earlier numlink with SQLite's default, in WAL mode, with a table.
        let old = dir.join("old.db");
        let c = rusqlite::Connection::open(&old).unwrap();
        c.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        drop(c);
        let mut conn = super::SqliteConn::open(&old).unwrap();
        assert_eq!(page_size(&mut conn), 4096);
        assert_eq!(conn.query_one("SELECT x FROM t", &[]).unwrap().unwrap().i64(0).unwrap(), 1);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn placeholders_must_come_in_order() {
        assert!(super::placeholders_in_order("UPDATE t SET a = $1, b = $2 WHERE id = $3 AND c = $1"));
        assert!(super::placeholders_in_order("SELECT 1"));
        assert!(!super::placeholders_in_order("UPDATE t SET a = $1, b = $10 WHERE id = $9"));
    }
}
