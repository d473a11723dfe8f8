//! The job runner for lifecycle, binding and check files: one unit of work per call
//! ([`JobRunner::run_once`] applies one chunk of the oldest runnable job); [`JobRunner::run`] loops it in the background and owns waiting and shutdown.
//!
//! A job's checkpoint (byte offset and line of the next row) is committed with each chunk, so after a
//! crash the runner resumes at the first row that was not committed, and nothing is applied twice.
//!
//! A check file's chunk is answered from the index, its answers appended to the job's result file and
//! flushed to disk, and only then is the chunk committed (its audit records, the checkpoint, and the
//! result file's committed length). A restarted runner cuts the result file back to that length first.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use csv::ByteRecord;
use store::{Checkpoint, ChunkRow, Job, JobKind, RowData, Store, StoreError};
use tokio::sync::Notify;

use crate::files::{FileFormat, FileLimits, parse_row};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
}

#[derive(Clone, Debug)]
pub struct JobRunner {
    store: Store,
    limits: FileLimits,
    wake: Arc<Notify>,
    /// Consecutive failures to apply a chunk of one job: (job id, count).
    failures: Arc<std::sync::Mutex<(String, u32)>>,
}

/// A job whose chunk fails to apply this many times in a row is failed, so that one bad job cannot
/// hold up every later one.
pub const CHUNK_ATTEMPTS_MAX: u32 = 3;

/// What one read of a spooled file produced.
struct Chunk {
    rows: Vec<ChunkRow>,
    /// A check file's first two fields of each row, as written (a bad row is echoed in the result).
    raw: Vec<(String, String)>,
    next_offset: u64,
    next_line: u64,
    finished: bool,
}

/// Answers a check file's chunk from the index, fills the answers into its rows, appends them to the
/// result file (cut back to its committed length first) and flushes it. Returns the file's new length.
fn answer_chunk(store: &Store, job: &Job, chunk: &mut Chunk) -> Result<u64, String> {
    let items: Vec<(domain::PhoneNumber, domain::Day)> = chunk
        .rows
        .iter()
        .filter_map(|r| match &r.row {
            Ok(RowData::Check { number, date, .. }) => Some((*number, *date)),
            _ => None,
        })
        .collect();
    let mut answers = store.answer_many(&items).into_iter();
    let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(chunk.rows.len() * 32));
    let csv_err = |e: csv::Error| format!("writing the result: {e}");
    if job.result_bytes == 0 {
        out.write_record(["phone_number", "date", "answer"]).map_err(csv_err)?;
    }
    for (r, (raw_number, raw_date)) in chunk.rows.iter_mut().zip(&chunk.raw) {
        match &mut r.row {
            Ok(RowData::Check { number, date, answer }) => {
                *answer = match answers.next() {
                    Some(Ok(a)) => a.as_str(),
                    Some(Err(_)) => "OUT_OF_RANGE",
                    None => return Err("fewer answers than questions".into()),
                };
                out.write_record([number.to_string(), date.to_string(), (*answer).to_string()]).map_err(csv_err)?;
            }
            Ok(_) => return Err("a row of another kind in a check file".into()),
            Err(rej) => {
                out.write_record([raw_number.as_str(), raw_date.as_str(), rej.code.as_str()]).map_err(csv_err)?
            }
        }
    }
    let bytes = out.into_inner().map_err(|e| format!("writing the result: {e}"))?;
    let path = job.result_path();
    let io = |e: std::io::Error| format!("writing the result file: {e}");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(io)?;
    file.set_len(job.result_bytes).map_err(io)?;
    file.seek(SeekFrom::End(0)).map_err(io)?;
    std::io::Write::write_all(&mut file, &bytes).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(job.result_bytes + bytes.len() as u64)
}

impl JobRunner {
    pub fn new(store: Store, limits: FileLimits) -> JobRunner {
        JobRunner { store, limits, wake: Arc::new(Notify::new()), failures: Arc::default() }
    }

    /// Wakes the runner: call after queueing a job.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Applies one chunk of the oldest runnable job. `Ok(false)` when there is nothing to do.
    pub async fn run_once(&self) -> Result<bool, WorkerError> {
        let Some(job) = self.store.next_job().await? else {
            return Ok(false);
        };
        let limits = self.limits;
        let read_job = job.clone();
        let store = self.store.clone();
        let chunk = tokio::task::spawn_blocking(move || {
            let mut c = read_chunk(&read_job, &limits)?;
            let result_bytes =
                if read_job.kind == JobKind::Checks { answer_chunk(&store, &read_job, &mut c)? } else { 0 };
            Ok::<_, String>((c, result_bytes))
        })
        .await
        .unwrap_or_else(|e| Err(format!("reading the file failed: {e}")));
        match chunk {
            Ok((c, result_bytes)) => {
                let applied = self
                    .store
                    .apply_chunk(
                        job.id.clone(),
                        job.byte_offset,
                        c.rows,
                        Checkpoint {
                            next_offset: c.next_offset,
                            next_line: c.next_line,
                            finished: c.finished,
                            result_bytes,
                        },
                    )
                    .await;
                let done = match applied {
                    Ok(done) => {
                        *self.failures.lock().expect("never poisoned") = (String::new(), 0);
                        done
                    }
                    Err(e) => {
                        let failed = {
                            let mut f = self.failures.lock().expect("never poisoned");
                            if f.0 != job.id {
                                *f = (job.id.clone(), 0);
                            }
                            f.1 += 1;
                            f.1 >= CHUNK_ATTEMPTS_MAX
                        };
                        tracing::error!(job = %job.id, error = %e, "applying a chunk failed");
                        if failed {
                            self.store
                                .fail_job(&job.id, "the file could not be applied: internal error".into())
                                .await?;
                            return Ok(true);
                        }
                        return Err(e.into());
                    }
                };
                if done.state.is_final() {
                    tracing::info!(job = %done.id, rows = done.rows_read, accepted = done.accepted, duplicates = done.duplicates, rejected = done.rejected, "job finished");
                    let _ = std::fs::remove_file(&done.spool_path);
                }
            }
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "job failed");
                self.store.fail_job(&job.id, error).await?;
            }
        }
        Ok(true)
    }

    /// Runs until nothing is left; for tests and the CLI.
    pub async fn run_until_idle(&self) -> Result<(), WorkerError> {
        while self.run_once().await? {}
        Ok(())
    }

    /// Runs in the background until `shutdown` resolves. Errors are logged and retried after a pause.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);
        const POLL: Duration = Duration::from_secs(30);
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => POLL,
                Err(e) => {
                    tracing::error!(error = %e, "job runner failed; retrying");
                    RETRY_AFTER_ERROR
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

fn read_chunk(job: &Job, limits: &FileLimits) -> Result<Chunk, String> {
    let format = FileFormat::parse(&job.format).ok_or_else(|| format!("unknown file format {:?}", job.format))?;
    let path = PathBuf::from(&job.spool_path);
    let mut file = std::fs::File::open(&path).map_err(|e| {
        tracing::error!(job = %job.id, path = %path.display(), error = %e, "the spooled file is gone");
        "the uploaded file is gone from the server: upload it again".to_string()
    })?;
    file.seek(SeekFrom::Start(job.byte_offset)).map_err(|e| format!("cannot seek the uploaded file: {e}"))?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(std::io::BufReader::new(file));
    let mut record = ByteRecord::new();
    let mut rows = Vec::with_capacity(limits.chunk_rows);
    let mut raw = Vec::new();
    let mut skip_header = job.byte_offset == 0;
    let mut finished = false;
    while rows.len() < limits.chunk_rows {
        match reader.read_byte_record(&mut record) {
            Ok(false) => {
                finished = true;
                break;
            }
            Ok(true) => {
                let line = job.line + record.position().map_or(1, |p| p.line()) - 1;
                if skip_header {
                    // Checked at upload; the header is line 1.
                    skip_header = false;
                    continue;
                }
                if job.rows_read + rows.len() as u64 >= limits.file_rows_max {
                    return Err(format!("the file has more than {} rows (file_rows_max)", limits.file_rows_max));
                }
                rows.push(ChunkRow { line, row: parse_row(format, &record, limits) });
                if format == FileFormat::Checks {
                    let field = |i| {
                        record.get(i).map(|f: &[u8]| String::from_utf8_lossy(f).trim().to_string()).unwrap_or_default()
                    };
                    raw.push((field(0), field(1)));
                }
            }
            Err(e) => return Err(format!("the file is not valid CSV: {e}")),
        }
    }
    let pos = reader.position();
    Ok(Chunk { rows, raw, next_offset: job.byte_offset + pos.byte(), next_line: job.line + pos.line() - 1, finished })
}
