//! The job runner for lifecycle, binding and check files: [`JobRunner::run_once`] applies the oldest
//! runnable job chunk by chunk, reading (and answering, for a check file) each chunk while the one
//! before commits; [`JobRunner::run`] loops it in the background and owns waiting and shutdown.
//!
//! A job's checkpoint (byte offset and line of the next row) is committed with each chunk, so after a
//! crash the runner resumes at the first row that was not committed, and nothing is applied twice.
//!
//! A lifecycle file is applied in number order, whatever order its rows came in (see `order`): the
//! reading stage sorts the whole file before it hands over the first chunk, and the checkpoint is the
//! number of rows of that order applied.
//!
//! A check file's chunk is answered from the index, its answers appended to the job's result file and
//! flushed to disk, and only then is the chunk committed (its audit records, the checkpoint, and the
//! result file's committed length). A restarted runner cuts the result file back to that length first.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::{Day, PhoneNumber, Rejection, RejectionCode};
use store::{AnsweredCheck, Checkpoint, ChunkRow, Job, LoggedAnswer, PreparedChunk, Store, StoreError};
use tokio::sync::Notify;

use crate::files::{FileFormat, FileLimits, READ_BUFFER_BYTES, Record, Records, csv_cell, parse_check, parse_row};
use crate::order::{self, NumberOrder};

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
    /// Counts the runner's commits and failed jobs: whoever follows a job wakes on it.
    progress: Arc<tokio::sync::watch::Sender<u64>>,
    /// Consecutive failures to apply a chunk of one job: (job id, count).
    failures: Arc<std::sync::Mutex<(String, u32)>>,
    /// Where this node keeps its copies of files the database keeps for every node.
    spool_dir: Option<PathBuf>,
}

/// A job whose chunk fails to apply this many times in a row is failed, so that one bad job cannot
/// hold up every later one.
pub const CHUNK_ATTEMPTS_MAX: u32 = 3;

/// What one read of a spooled file produced.
struct Chunk {
    rows: Rows,
    next_offset: u64,
    next_line: u64,
    finished: bool,
    /// The file's data rows, when the reading has counted them.
    rows_total: Option<u64>,
}

/// A chunk's rows.
enum Rows {
    /// A lifecycle or binding file's.
    Rows(Vec<ChunkRow>),
    /// A check file's: its good rows' questions, in order, and its bad rows (16 bytes a good row, where
    /// a [`ChunkRow`] takes 176: at millions of rows a second, moving rows costs as much as answering).
    Checks { questions: Vec<(PhoneNumber, Day)>, bad: Vec<BadCheck> },
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Rows(rows) => rows.len(),
            Rows::Checks { questions, bad } => questions.len() + bad.len(),
        }
    }
}

/// A check file's row that did not parse: echoed in the result, as written, after the first
/// `after` good rows of its chunk.
struct BadCheck {
    after: usize,
    row: ChunkRow,
    number: String,
    date: String,
}

/// Where the committing stage stopped.
enum Committed {
    /// The job finished or failed, `max` chunks were applied, or the checkpoint moved elsewhere.
    AsFarAsItGoes,
    /// The other stages stopped handing chunks over before the job finished.
    StagesEnded,
}

/// A chunk read and prepared, with the checkpoint it moves the job to.
struct ReadChunk {
    chunk: PreparedChunk,
    to: Checkpoint,
}

/// `YYYY-MM-DD`.
fn write_date(out: &mut Vec<u8>, d: domain::Day) {
    let v = d.packed();
    let (y, m, day) = (v / 10_000, (v / 100) % 100, v % 100);
    if (0..10_000).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (day / 10) as u8,
            b'0' + (day % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(d.to_string().as_bytes());
    }
}

/// Answers a check file's chunk from the index and (`to_file`) appends its rows to the result file
/// (cut back to its committed length first), flushed, in input order: a good row with its answer, a bad row as
/// written with its error code. Returns the answered checks and the bytes appended.
fn answer_chunk(
    store: &Store,
    job: &Job,
    questions: &[(PhoneNumber, Day)],
    bad: &[BadCheck],
    to_file: bool,
) -> Result<(Vec<AnsweredCheck>, Vec<u8>), String> {
    let answers = store.answer_many(questions);
    if answers.len() != questions.len() {
        return Err(format!("{} answers to {} questions", answers.len(), questions.len()));
    }
    let answered: Vec<AnsweredCheck> =
        questions.iter().zip(answers).map(|(&(n, d), a)| (n, d, LoggedAnswer::from(&a))).collect();
    let mut bytes: Vec<u8> = Vec::with_capacity(answered.len() * 40 + bad.len() * 64 + 32);
    if job.result_bytes == 0 {
        bytes.extend_from_slice(b"phone_number,date,answer\n");
    }
    let mut written = 0;
    for b in bad.iter().map(Some).chain([None]) {
        let upto = b.map_or(answered.len(), |b| b.after);
        for &(number, date, answer) in &answered[written..upto] {
            // Numbers, dates and answers need no quoting: written directly.
            bytes.extend_from_slice(number.e164_bytes(&mut [0u8; 16]));
            bytes.push(b',');
            write_date(&mut bytes, date);
            bytes.push(b',');
            bytes.extend_from_slice(answer.as_str().as_bytes());
            bytes.push(b'\n');
        }
        written = upto;
        if let Some(b) = b {
            let code = b.row.row.as_ref().err().map_or("", |rej| rej.code.as_str());
            // As written, quoted as CSV needs, and never a formula.
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut bytes);
            w.write_record([&*csv_cell(&b.number), &*csv_cell(&b.date), code])
                .map_err(|e| format!("writing the result: {e}"))?;
            w.flush().map_err(|e| format!("writing the result: {e}"))?;
        }
    }
    if !to_file {
        return Ok((answered, bytes));
    }
    let path = job.result_path();
    let io = |e: std::io::Error| format!("writing the result file: {e}");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(io)?;
    file.set_len(job.result_bytes).map_err(io)?;
    file.seek(SeekFrom::End(0)).map_err(io)?;
    std::io::Write::write_all(&mut file, &bytes).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok((answered, bytes))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl JobRunner {
    pub fn new(store: Store, limits: FileLimits) -> JobRunner {
        let progress = Arc::new(tokio::sync::watch::Sender::new(0));
        JobRunner { store, limits, wake: Arc::new(Notify::new()), progress, failures: Arc::default(), spool_dir: None }
    }

    /// Runs jobs queued on any node from copies in `dir` of the files the database keeps, when it
    /// keeps them ([`Store::shares_files`]); otherwise each job is read where it was spooled.
    pub fn with_spool_dir(mut self, dir: PathBuf) -> JobRunner {
        self.spool_dir = Some(dir);
        self
    }

    /// The job as this node reads it: where the database keeps files for every node, from this node's
    /// copy in its spool directory of the uploaded file, fetched now if it has none. (A check file's
    /// result then goes to the database alone, with each chunk's commit.)
    async fn at_home(&self, job: Job) -> Result<Job, WorkerError> {
        if !self.store.shares_files() {
            return Ok(job);
        }
        let local = match &self.spool_dir {
            Some(dir) => job.spooled_in(dir),
            None => job.clone(),
        };
        if let Some(dir) = std::path::Path::new(&local.spool_path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| WorkerError::Setup(format!("{}: {e}", dir.display())))?;
        }
        if !std::path::Path::new(&local.spool_path).exists()
            && !self.store.fetch_file(job.file_name(), local.spool_path.clone().into(), u64::MAX).await?
        {
            // The reading stage says the file is gone.
            tracing::warn!(job = %job.id, "the database keeps no copy of the job's file");
        }
        Ok(local)
    }

    /// Changes whenever a chunk of a job has committed or a job has failed (a followed check file's
    /// result waits on it).
    pub fn progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progress.subscribe()
    }

    fn moved(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes the runner: call after queueing a job.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Applies the oldest runnable job, chunk by chunk, until it is finished or a chunk fails to
    /// apply. `Ok(false)` when there is nothing to do.
    ///
    /// Three stages run at once, each on its own thread, a chunk apart: one reads and parses the file,
    /// one answers a check file's chunk into the result file and hashes what the writer needs, and this
    /// task commits. A chunk is applied only if the commit before it left the checkpoint where its read
    /// began, so a failed commit or a second runner never makes a chunk count twice; whatever was
    /// read ahead is dropped (a check file's answers past the committed length are cut off by the next
    /// run, as after a crash).
    pub async fn run_once(&self) -> Result<bool, WorkerError> {
        self.run_chunks(u64::MAX).await
    }

    /// [`JobRunner::run_once`], stopping after `max` chunks have been handed to the writer (the chunks
    /// read ahead by then are read, not applied: as a process that stops there leaves them).
    pub async fn run_chunks(&self, max: u64) -> Result<bool, WorkerError> {
        let Some(job) = self.store.next_job().await? else {
            return Ok(false);
        };
        // The claim is renewed while the job runs, its file's fetch included (each chunk's commit
        // renews it too).
        let renewing = {
            let (store, id) = (self.store.clone(), job.id.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(store::JOB_LEASE_RENEW_SECS));
                every.tick().await;
                loop {
                    every.tick().await;
                    match store.renew_job_claim(&id).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => tracing::warn!(job = %id, error = %e, "renewing the claim on a job failed"),
                    }
                }
            })
        };
        let _renewing = AbortOnDrop(renewing);
        let job = self.at_home(job).await?;
        let (parsed_tx, mut parsed_rx) = tokio::sync::mpsc::channel::<(Job, Result<Chunk, String>)>(1);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<(Job, Result<ReadChunk, String>)>(1);
        let limits = self.limits;
        let mut at = job.clone();
        let reader = tokio::task::spawn_blocking(move || {
            // A number-order job's rows, sorted when the first chunk is read.
            let mut sorted: Option<NumberOrder> = None;
            loop {
                let chunk =
                    if at.in_number_order { read_sorted(&at, &limits, &mut sorted) } else { read_chunk(&at, &limits) };
                // Where the next chunk starts if this one commits.
                let next = chunk.as_ref().ok().filter(|c| !c.finished).map(|c| Job {
                    byte_offset: c.next_offset,
                    line: c.next_line,
                    rows_read: at.rows_read + c.rows.len() as u64,
                    ..at.clone()
                });
                if parsed_tx.blocking_send((at, chunk)).is_err() {
                    return;
                }
                match next {
                    Some(next) => at = next,
                    None => return,
                }
            }
        });
        let store = self.store.clone();
        let keep_results = self.store.shares_files();
        let answerer = tokio::task::spawn_blocking(move || {
            // A check file's result grows by each chunk's answers.
            let mut result_bytes = None;
            while let Some((mut at, chunk)) = parsed_rx.blocking_recv() {
                at.result_bytes = result_bytes.unwrap_or(at.result_bytes);
                let read = chunk.and_then(|c| {
                    let (chunk, result_bytes) = match c.rows {
                        Rows::Rows(rows) => (store.prepare_chunk(&at, rows), 0),
                        Rows::Checks { questions, bad } => {
                            let (answered, bytes) = answer_chunk(&store, &at, &questions, &bad, !keep_results)?;
                            let result_bytes = at.result_bytes + bytes.len() as u64;
                            let mut chunk = store.prepare_checks(&answered, bad.into_iter().map(|b| b.row).collect());
                            if keep_results {
                                chunk.keep_result(at.result_bytes, bytes);
                            }
                            (chunk, result_bytes)
                        }
                    };
                    let to = Checkpoint {
                        next_offset: c.next_offset,
                        next_line: c.next_line,
                        finished: c.finished,
                        result_bytes,
                        rows_total: c.rows_total,
                    };
                    Ok(ReadChunk { chunk, to })
                });
                result_bytes = read.as_ref().ok().map(|r| r.to.result_bytes);
                if ready_tx.blocking_send((at, read)).is_err() || result_bytes.is_none() {
                    return;
                }
            }
        });
        let job_id = job.id.clone();
        let outcome = self.commit_chunks(job, &mut ready_rx, max).await;
        // The stages stop at their next hand-over; a check file's answers read ahead are written in
        // full before anything else (a retry) cuts the result file back.
        drop(ready_rx);
        let panicked = [answerer.await, reader.await].iter().any(|r| r.as_ref().is_err_and(|e| e.is_panic()));
        let outcome = outcome.inspect(|_| self.moved());
        match outcome? {
            Committed::AsFarAsItGoes => Ok(true),
            // A stage died without handing over an error: the job cannot be read, and retrying it
            // would only repeat that.
            Committed::StagesEnded if panicked => {
                tracing::error!(job = %job_id, "reading the file panicked");
                self.store.fail_job(&job_id, "the file could not be read: internal error".into()).await?;
                self.moved();
                Ok(true)
            }
            Committed::StagesEnded => {
                Err(WorkerError::Setup(format!("job {job_id}: the file's reading stopped early")))
            }
        }
    }

    /// The committing stage of [`JobRunner::run_chunks`]. Up to `chunks_in_flight` chunks are
    /// handed to the writer before the first of them has committed, so that when the writer is the
    /// slower stage (a file in random number order dirties pages all over the tables), several chunks
    /// commit in one transaction of its group commit instead of one each. Each is still applied in its
    /// own savepoint, and only from the checkpoint the one before it left (the writer checks), so a
    /// chunk after one that failed or applied nothing applies nothing. Once something goes wrong,
    /// nothing more is handed over, and what is in flight is waited for before the outcome is decided.
    async fn commit_chunks(
        &self,
        job: Job,
        ready: &mut tokio::sync::mpsc::Receiver<(Job, Result<ReadChunk, String>)>,
        max: u64,
    ) -> Result<Committed, WorkerError> {
        use futures_util::StreamExt;
        type Applying =
            std::pin::Pin<Box<dyn std::future::Future<Output = (Job, Checkpoint, Result<Job, StoreError>)> + Send>>;
        let mut in_flight: futures_util::stream::FuturesOrdered<Applying> = futures_util::stream::FuturesOrdered::new();
        // Where the next chunk must begin: the last chunk handed over ends there.
        let mut next_at = job.byte_offset;
        let mut sent = 0u64;
        // Set when nothing more is to be handed over.
        let mut stop: Option<Committed> = None;
        // Every chunk that came back so far was applied (so the job is where the next one begins).
        let mut chain = true;
        let mut finished = false;
        let mut apply_error: Option<(Job, StoreError)> = None;
        let mut read_error: Option<(Job, String)> = None;
        loop {
            let can_send = stop.is_none() && sent < max && in_flight.len() < self.limits.chunks_in_flight.max(1);
            if !can_send && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some((at, to, applied)) = in_flight.next(), if !in_flight.is_empty() => match applied {
                    Ok(done) => {
                        *self.failures.lock().expect("never poisoned") = (String::new(), 0);
                        self.moved();
                        if done.state.is_final() {
                            tracing::info!(job = %done.id, rows = done.rows_read, accepted = done.accepted, duplicates = done.duplicates, rejected = done.rejected, "job finished");
                            let _ = std::fs::remove_file(&job.spool_path);
                            order::remove_runs(&job.spool_path);
                            finished = true;
                            stop = Some(Committed::AsFarAsItGoes);
                        } else if done.byte_offset != to.next_offset {
                            // Not applied: the job was not where this chunk was read from.
                            chain = false;
                            stop.get_or_insert(Committed::AsFarAsItGoes);
                        }
                    }
                    Err(e) => {
                        chain = false;
                        if apply_error.is_none() {
                            apply_error = Some((at, e));
                        }
                        stop.get_or_insert(Committed::AsFarAsItGoes);
                    }
                },
                got = ready.recv(), if can_send => {
                    let Some((at, read)) = got else {
                        stop = Some(Committed::StagesEnded);
                        continue;
                    };
                    if at.byte_offset != next_at {
                        // The chunk before did not end where this one was read from.
                        stop = Some(Committed::AsFarAsItGoes);
                        continue;
                    }
                    match read {
                        Ok(ReadChunk { chunk, to }) => {
                            next_at = to.next_offset;
                            sent += 1;
                            let store = self.store.clone();
                            in_flight.push_back(Box::pin(async move {
                                let applied = store.apply_prepared(&at, chunk, to).await;
                                (at, to, applied)
                            }));
                        }
                        Err(error) => {
                            read_error = Some((at, error));
                            stop = Some(Committed::AsFarAsItGoes);
                        }
                    }
                }
            }
        }
        if finished {
            return Ok(Committed::AsFarAsItGoes);
        }
        if let Some((at, e)) = apply_error {
            // The database away (a restart, a failover) is no fault of the job's: tried again later,
            // not counted against it.
            if matches!(e, StoreError::Unavailable { .. }) {
                tracing::warn!(job = %at.id, error = %e, "applying a chunk failed: the database is away");
                return Err(e.into());
            }
            let failed = {
                let mut f = self.failures.lock().expect("never poisoned");
                if f.0 != at.id.as_str() {
                    *f = (at.id.to_string(), 0);
                }
                f.1 += 1;
                f.1 >= CHUNK_ATTEMPTS_MAX
            };
            tracing::error!(job = %at.id, error = %e, "applying a chunk failed");
            if failed {
                self.store.fail_job(&at.id, "the file could not be applied: internal error".into()).await?;
                return Ok(Committed::AsFarAsItGoes);
            }
            return Err(e.into());
        }
        if let Some((at, error)) = read_error {
            // The job fails at this chunk only once every chunk before it has been applied; otherwise
            // the next run begins where the job is, and meets the error again in its turn.
            if chain {
                tracing::warn!(job = %at.id, %error, "job failed");
                self.store.fail_job(&at.id, error).await?;
            }
            return Ok(Committed::AsFarAsItGoes);
        }
        Ok(stop.unwrap_or(Committed::AsFarAsItGoes))
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
    // A chunk is megabytes, read in a few hundred calls; no row is held beyond its format's size (see
    // `Records`), whatever the file holds.
    let input = std::io::BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut reader = Records::new(input, format.columns(), limits.csv_field_bytes_max);
    // Check files in larger chunks: their rows are cheap to commit (packed into one audit batch).
    let checks = format == FileFormat::Checks;
    let chunk_rows = if checks { limits.check_chunk_rows } else { limits.chunk_rows };
    let mut rows = if checks {
        Rows::Checks { questions: Vec::with_capacity(chunk_rows), bad: Vec::new() }
    } else {
        Rows::Rows(Vec::with_capacity(chunk_rows))
    };
    let mut skip_header = job.byte_offset == 0;
    let mut finished = false;
    while rows.len() < chunk_rows {
        let read = reader.read().map_err(|e| format!("cannot read the uploaded file: {e}"))?;
        let (line, parsed) = match read {
            Record::End => {
                finished = true;
                break;
            }
            Record::Row { line } => (line, Ok(())),
            Record::TooLong { line, message } => (line, Err(Rejection::new(RejectionCode::InvalidArgument, message))),
        };
        let line = job.line + line - 1;
        if skip_header {
            // Checked at upload; the header is line 1.
            skip_header = false;
            continue;
        }
        if job.rows_read + rows.len() as u64 >= limits.file_rows_max {
            return Err(format!("the file has more than {} rows (file_rows_max)", limits.file_rows_max));
        }
        let record = reader.fields();
        match &mut rows {
            Rows::Rows(rows) => {
                let row = parsed.and_then(|()| parse_row(format, &record, limits));
                rows.push(ChunkRow { line, row });
            }
            Rows::Checks { questions, bad } => match parsed.and_then(|()| parse_check(&record, limits)) {
                Ok(q) => questions.push(q),
                Err(rejection) => {
                    // A bad row is echoed as written, cut as a message quotes a value (a row too long,
                    // not at all); a good one is written from what it parsed to.
                    let field = |i| {
                        record
                            .get(i)
                            .map(|f: &[u8]| domain::number::truncate_for_message(String::from_utf8_lossy(f).trim()))
                            .unwrap_or_default()
                    };
                    bad.push(BadCheck {
                        after: questions.len(),
                        row: ChunkRow { line, row: Err(rejection) },
                        number: field(0),
                        date: field(1),
                    });
                }
            },
        }
    }
    let (consumed, next) = reader.position();
    Ok(Chunk {
        rows,
        next_offset: job.byte_offset + consumed,
        next_line: job.line + next - 1,
        finished,
        rows_total: None,
    })
}

/// The next chunk of a number-order job: `job.byte_offset` counts the rows of that order applied.
/// The file is sorted at the first call (`sorted` keeps it for the next).
fn read_sorted(job: &Job, limits: &FileLimits, sorted: &mut Option<NumberOrder>) -> Result<Chunk, String> {
    let order = match sorted {
        Some(order) => order,
        None => sorted.insert(NumberOrder::sort(job, limits)?),
    };
    let (rows, finished) = order.next_rows(limits.chunk_rows)?;
    Ok(Chunk {
        next_offset: job.byte_offset + rows.len() as u64,
        next_line: job.line,
        finished,
        rows_total: Some(order.rows),
        rows: Rows::Rows(rows),
    })
}
