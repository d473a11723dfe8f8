//! The narrow SQL surface both backends provide: execute, query into rows of plain values, and
//! transaction control by statement. The store's logic is written once against [`Conn`]; the SQL text
//! is shared where the dialects agree (`$1` parameters work in both), and backend-specific where not.

use crate::StoreError;

/// A parameter or a column value. Widths match the PostgreSQL column types (`BIGINT`, `INTEGER`,
/// `SMALLINT`), which PostgreSQL checks strictly; SQLite stores them all as integers.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    I64(i64),
    I32(i32),
    I16(i16),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::I32(v)
    }
}
impl From<i16> for Value {
    fn from(v: i16) -> Self {
        Value::I16(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Clone, Debug)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    pub fn opt_i64(&self, i: usize) -> Option<i64> {
        match self.get(i) {
            Value::I64(v) => Some(*v),
            Value::I32(v) => Some(i64::from(*v)),
            Value::I16(v) => Some(i64::from(*v)),
            _ => None,
        }
    }

    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_i64(i).ok_or_else(|| StoreError::Corrupt(format!("column {i} is not an integer")))
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.get(i) {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i).ok_or_else(|| StoreError::Corrupt(format!("column {i} is not text")))
    }

    pub fn opt_bytes(&self, i: usize) -> Option<Vec<u8>> {
        match self.get(i) {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

/// The text of a statement for one row or for `many` (a list of rows, or of values), each built once by
/// `build(rows)` and kept in `texts`: the statement caches see two texts, not one per length.
pub(crate) fn one_or_many(
    texts: &'static std::sync::OnceLock<[String; 2]>,
    rows: usize,
    many: usize,
    build: impl Fn(usize) -> String,
) -> &'static str {
    debug_assert!(rows == 1 || rows == many, "{rows} rows: a statement has 1 or {many}");
    let texts = texts.get_or_init(|| [build(1), build(many)]);
    if rows == 1 { &texts[0] } else { &texts[1] }
}

/// Which dialect a connection speaks, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub trait Conn: Send + 'static {
    fn dialect(&self) -> Dialect;
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs statements without parameters (migrations, transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Starts the one write transaction of a batch. Both backends serialize writers across
    /// processes here (SQLite's write lock, a PostgreSQL advisory lock), which keeps the audit chain
    /// linear even when the CLI writes beside a running server.
    fn begin_write(&mut self) -> Result<(), StoreError>;

    /// Starts a read-only transaction: every read in it sees the database as of one moment.
    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN")
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT")
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch("ROLLBACK")
    }

    /// Calls `f` with each row as it comes, without holding the result (a scan of a large table).
    fn query_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for r in self.query(sql, params)? {
            f(&r)?;
        }
        Ok(())
    }

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `sql`, an `INSERT` of one row into a table whose key is `seq` (SQLite: `seq INTEGER
    /// PRIMARY KEY`, the rowid), ending in `ON CONFLICT DO NOTHING` or not: the new row's seq, or
    /// `None` when nothing was inserted. SQLite answers from the connection's last rowid, without the
    /// `RETURNING` clause that would give the statement a journal; PostgreSQL adds `RETURNING seq`.
    fn insert_seq(&mut self, sql: &str, params: &[Value]) -> Result<Option<i64>, StoreError> {
        Ok(match self.query_one(&format!("{sql} RETURNING seq"), params)? {
            Some(r) => Some(r.i64(0)?),
            None => None,
        })
    }
}
