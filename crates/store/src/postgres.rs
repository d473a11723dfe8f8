//! The scale-out backend: PostgreSQL through the `postgres` crate, the blocking face of
//! tokio-postgres. The store runs every connection on its own thread (the writer, the readers), so
//! the blocking API lets both backends share one synchronous implementation of the logic.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Value};

/// A lock number that every numlink writer takes for its transaction.
const WRITER_LOCK: i64 = 0x6e756d6c696e6b; // "numlink"

pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let client = Client::connect(url, NoTls).map_err(|e| StoreError::open(format!("postgres: {e}")))?;
        Ok(PgConn { client, statements: HashMap::new() })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // A connection lost (a restart, a failover) is worth a retry; anything else is a failure.
        // A connection closed, reset or timed out (keepalives, `tcp_user_timeout`: a machine gone without
        // a word) is worth a retry: the next attempt connects again.
        let io = std::error::Error::source(&e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
        if e.is_closed() || io {
            return StoreError::Unavailable { reason: format!("the database connection was lost: {e}") };
        }
        // So is a server shutting down or starting (a failover), a connection failure, and a write on
        // a server that is now a standby (a failover's old primary): the next attempt reconnects.
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            // Class 53, insufficient resources (53100: the disk is full), passes as well.
            if code.starts_with("08") || code.starts_with("57P") || code == "25006" || code.starts_with("53") {
                return StoreError::Unavailable {
                    reason: format!("the database is not available: {code}: {}", db.message()),
                };
            }
        }
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        StoreError::Database { message, source: Some(Box::new(e)) }
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::I64(v) => v.to_sql(ty, out),
            Value::I32(v) => v.to_sql(ty, out),
            Value::I16(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Bytes(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

fn column(row: &postgres::Row, i: usize) -> Result<Value, StoreError> {
    let ty = row.columns()[i].type_().clone();
    let v = if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Value::I64)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map(Value::I32)
    } else if ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?.map(Value::I16)
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes)
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map(|b| Value::I64(i64::from(b)))
    } else {
        row.try_get::<_, Option<String>>(i)?.map(Value::Text)
    };
    Ok(v.unwrap_or(Value::Null))
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.client.execute(&stmt, &refs)?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&stmt, &refs)?;
        rows.iter().map(|r| (0..r.len()).map(|i| column(r, i)).collect::<Result<Vec<_>, _>>().map(Row)).collect()
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let stmt = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let mut rows = self.client.query_raw(&stmt, refs)?;
        let mut row = Row(Vec::new());
        while let Some(r) = rows.next()? {
            row.0.clear();
            for i in 0..r.len() {
                row.0.push(column(&r, i)?);
            }
            f(&row)?;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        self.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})"))
    }

    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }
}

/// Listens on a connection of its own for the commits that log changes of the index
/// (`NOTIFY numlink_index`, the seq as payload), and calls `wake(Some(seq))` with the greatest seq of
/// those heard together, or `wake(None)` after a second without one, until `wake` returns false (its
/// store is gone). A lost connection is opened again a second later; meanwhile the writer's ticks
/// follow the changes all the same, only later.
pub(crate) fn listen_for_changes(
    url: String,
    wake: impl Fn(Option<u64>) -> bool + Send + 'static,
) -> Result<(), StoreError> {
    let second = std::time::Duration::from_secs(1);
    std::thread::Builder::new()
        .name("numlink-follow".into())
        .spawn(move || {
            loop {
                let listened = Client::connect(&url, NoTls).and_then(|mut client| {
                    client.batch_execute("LISTEN numlink_index")?;
                    loop {
                        let mut notifications = client.notifications();
                        let seq = |n: postgres::Notification| n.payload().parse::<u64>().unwrap_or(u64::MAX);
                        let mut heard = notifications.timeout_iter(second).next()?.map(seq);
                        if heard.is_some() {
                            let mut more = notifications.iter();
                            while let Some(n) = more.next()? {
                                heard = heard.max(Some(seq(n)));
                            }
                        }
                        if !wake(heard) {
                            return Ok(());
                        }
                    }
                });
                match listened {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for other nodes' commits failed; trying again in a second");
                        std::thread::sleep(second);
                        if !wake(None) {
                            return;
                        }
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| StoreError::open(format!("cannot start the thread that listens for commits: {e}")))
}
