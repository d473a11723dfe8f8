//! Bulk files as jobs (carriers' lifecycle files, institutions' binding and check files): the upload
//! spools the streamed body to disk (never whole in memory), checks its header, makes it durable, and
//! only then queues the job and answers `202`. The job runner applies it in bounded chunks; a check
//! file's answers are streamed back from `GET /v1/jobs/{id}/result`.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use store::{Job, JobId, JobKind, Role};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use workers::FileFormat;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictQuery;
use crate::state::{AppState, Following};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCreated {
    pub job_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    /// `lifecycle`, `bindings` or `checks`.
    pub kind: String,
    /// `events` (event_id,phone_number,type,date), `events_recipient` (the same and a port's
    /// recipient), `rnd` (phone_number,disconnect_date),
    /// `bindings` (account_ref,phone_number,bound_on) or `checks` (phone_number,date).
    pub format: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub rows_read: u64,
    /// A lifecycle file's data rows, once counted: it is sorted into number order before any row is
    /// applied, so `rowsRead` of `rowsTotal` is how far it has come.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_total: Option<u64>,
    pub accepted: u64,
    pub duplicates: u64,
    /// `ported_in` rows waiting for the serving carrier's `ported_out` of their day (see
    /// `GET /v1/pending-ports`).
    pub pending: u64,
    pub rejected: u64,
    /// Why the job failed as a whole, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A check file's answers, once it has succeeded: `GET` this path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// When the job's outputs (a check file's answers, the rejected rows) were deleted: 7 days after
    /// it ended, by default. The counts stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs_deleted_at: Option<String>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        let result =
            (j.kind == JobKind::Checks && j.state == store::JobState::Succeeded && j.outputs_deleted_at.is_none())
                .then(|| format!("/v1/jobs/{}/result", j.id));
        JobView {
            result,
            id: j.id.into(),
            kind: j.kind.as_str().into(),
            format: j.format,
            state: j.state.as_str().into(),
            rows_read: j.rows_read,
            rows_total: j.rows_total,
            accepted: j.accepted,
            duplicates: j.duplicates,
            pending: j.pending,
            rejected: j.rejected,
            error: j.error,
            created_at: j.created_at,
            updated_at: j.updated_at,
            outputs_deleted_at: j.outputs_deleted_at,
        }
    }
}

/// Bytes of the header line we look at to detect the format.
const HEADER_BYTES_MAX: usize = 1024;

/// A spooled upload that removes its file unless kept.
struct Spool {
    path: PathBuf,
    keep: bool,
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/lifecycle-files",
    tag = "Carriers",
    summary = "Upload a lifecycle file (CSV) to be applied as a job",
    description = "CSV with a header row: `event_id,phone_number,type,date` (with a fifth column `recipient`, a carrier's \
                   id, for a donor naming a port's recipient on its `ported_out`, or for the number-portability \
                   database's whole ports), or the RND style `phone_number,disconnect_date`. Streamed to disk; answered \
                   once the file is durable. Each bad row is rejected on its own, with its line number; a carrier's \
                   `ported_in` without the donor's `ported_out` of its day is counted `pending` (see `GET /v1/pending-ports`). \
                   For carriers and the number-portability database.",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 202, description = "Queued", body = JobCreated),
        (status = 400, description = "INVALID_ARGUMENT: empty file or unknown header", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers and the number-portability database", body = ErrorInfo),
        (status = 408, description = "REQUEST_TIMEOUT: the upload stalled, or came slower than body_bytes_per_sec_min", body = ErrorInfo),
        (status = 413, description = "PAYLOAD_TOO_LARGE: over file_bytes_max or file_rows_max", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn upload_lifecycle_file(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    queued(&upload(&state, &caller, JobKind::Lifecycle, body.into_data_stream(), body_error).await?)
}

#[utoipa::path(
    post,
    path = "/v1/binding-files",
    tag = "Bindings",
    summary = "Upload a binding file (CSV) to be applied as a job",
    description = "CSV with the header `account_ref,phone_number,bound_on`. Streamed to disk; answered once the file is durable. \
                   Each row registers a binding as `POST /v1/bindings` would; a bad row is rejected on its own, with its line number.",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 202, description = "Queued", body = JobCreated),
        (status = 400, description = "INVALID_ARGUMENT: empty file or unknown header", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 413, description = "PAYLOAD_TOO_LARGE: over file_bytes_max or file_rows_max", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn upload_binding_file(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    queued(&upload(&state, &caller, JobKind::Bindings, body.into_data_stream(), body_error).await?)
}

#[utoipa::path(
    post,
    path = "/v1/check-files",
    tag = "Checks",
    summary = "Upload a check file (CSV) to be answered as a job",
    description = "CSV with the header `phone_number,date`: has each number changed hands since its date? Streamed to disk; \
                   answered once the file is durable. When the job has succeeded, `GET /v1/jobs/{id}/result` streams \
                   `phone_number,date,answer` in input order: `yes`, `no`, `no_data`, or a bad row's error code. Every \
                   number checked is audited, as a single check is.",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 202, description = "Queued", body = JobCreated),
        (status = 400, description = "INVALID_ARGUMENT: empty file or unknown header", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 413, description = "PAYLOAD_TOO_LARGE: over file_bytes_max or file_rows_max", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn upload_check_file(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    queued(&upload(&state, &caller, JobKind::Checks, body.into_data_stream(), body_error).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultQuery {
    /// `true`: start at once, even while the job is queued or running, and stream the answers as each
    /// chunk of the file commits; the response ends when the job has succeeded, and is cut off (the
    /// connection closes before the body's end) if it fails or the server begins to stop first.
    pub follow: Option<bool>,
}

/// A followed result looks at its job when the runner reports progress, and at least this often.
const FOLLOW_LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes read from a result file per piece of the response.
const RESULT_READ_BYTES: usize = 256 * 1024;

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/result",
    tag = "Jobs",
    summary = "A check file's answers, as CSV: phone_number,date,answer",
    description = "Once the job has succeeded: the whole result, with its length. With `follow=true`, at once: the answers \
                   as they are committed, ending when the job has succeeded (a body cut off before its end means the \
                   job failed or the server is stopping: what arrived is a prefix of the result, not the result).",
    params(("id" = String, Path, description = "The job id"), ResultQuery),
    responses(
        (status = 200, description = "CSV, one row per input row, in input order", body = String, content_type = "text/csv"),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such job, not yours, or not a check file", body = ErrorInfo),
        (status = 409, description = "CONFLICT: the job has not succeeded (yet), or failed", body = ErrorInfo),
        (status = 410, description = "GONE: the result was deleted after the retention period (7 days after the job ended, by default)", body = ErrorInfo),
        (status = 429, description = "TOO_MANY_REQUESTS: over followed_results_max followed results at once", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn job_result(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    StrictQuery(q): StrictQuery<ResultQuery>,
) -> ApiResult<Response> {
    let job = own_job(&state, &caller, &id).await?;
    outputs_kept(&job)?;
    if job.kind != JobKind::Checks {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("job \"{}\" is not a check file: it has no result", job.id),
        ));
    }
    let follow = q.follow.unwrap_or(false);
    if job.state == store::JobState::Failed {
        return Err(ApiError::new(ErrorCode::Conflict, format!("job \"{}\" failed: it has no result", job.id)));
    }
    if !follow && job.state != store::JobState::Succeeded {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("job \"{}\" is {}: its result is ready when it has succeeded", job.id, job.state.as_str()),
        ));
    }
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if follow && job.state != store::JobState::Succeeded {
        let slot = FollowSlot::take(&state, caller.0.seq)?;
        let stream = futures_util::stream::try_unfold(Follow::new(state, job, slot), Follow::next);
        return Ok(([content_type], Body::from_stream(stream)).into_response());
    }
    let mut result = ResultReader::new(&state, &job);
    // Opened (or its first part read) before the answer begins: a result that is gone is a 404.
    let first = result.read(0, job.result_bytes).await.map_err(|e| {
        tracing::error!(job = %job.id, error = %e, "a check file's result is gone");
        ApiError::new(ErrorCode::NotFound, "the result is gone from the server: upload the file again")
    })?;
    // Streamed, and no further than the committed length.
    let total = job.result_bytes;
    let rest = futures_util::stream::try_unfold((result, first.len() as u64), move |(mut r, at)| async move {
        if at >= total {
            return Ok(None);
        }
        let bytes = r.read(at, total).await?;
        let next = at + bytes.len() as u64;
        Ok::<_, std::io::Error>(Some((bytes, (r, next))))
    });
    let chunks = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let headers = [content_type, (header::CONTENT_LENGTH, HeaderValue::from(job.result_bytes))];
    Ok((headers, Body::from_stream(chunks)).into_response())
}

/// Reads a check file's result, front to back: from this node's file, or, where the database keeps
/// files for every node, from its parts there (the job may have run on another node).
struct ResultReader {
    store: Option<store::Store>,
    name: String,
    path: String,
    /// The local file, opened at the first read; its position is always where the last read ended.
    file: Option<tokio::fs::File>,
    /// The kept part last read (where it starts, its bytes): a part is megabytes, served in pieces.
    part: Option<(u64, Vec<u8>)>,
}

impl ResultReader {
    fn new(state: &AppState, job: &Job) -> ResultReader {
        // A result this node wrote to its disk before the database kept results (migration 30) is
        // read from there.
        let on_disk =
            std::fs::metadata(job.result_path()).is_ok_and(|m| job.result_bytes > 0 && m.len() >= job.result_bytes);
        let store = (state.store.shares_files() && !on_disk).then(|| state.store.clone());
        ResultReader { store, name: job.result_file_name(), path: job.result_path(), file: None, part: None }
    }

    /// The bytes from `at` (where the last read ended), at most [`RESULT_READ_BYTES`] and none at or
    /// beyond `upto`; at least one byte when `at < upto`, or an error.
    async fn read(&mut self, at: u64, upto: u64) -> std::io::Result<Vec<u8>> {
        let want = upto.saturating_sub(at).min(RESULT_READ_BYTES as u64) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        if let Some(store) = &self.store {
            let held = self.part.as_ref().is_some_and(|(start, bytes)| *start <= at && at < start + bytes.len() as u64);
            if !held {
                let part = store.file_part(self.name.clone(), at).await.map_err(std::io::Error::other)?;
                self.part = Some(part.ok_or_else(|| std::io::Error::other("the result is not kept"))?);
            }
            let (start, bytes) = self.part.as_ref().expect("read above");
            let from = (at - start) as usize;
            if from >= bytes.len() {
                return Err(std::io::Error::other(format!("the kept result ends before byte {at}")));
            }
            return Ok(bytes[from..(from + want).min(bytes.len())].to_vec());
        }
        if self.file.is_none() {
            self.file = Some(tokio::fs::File::open(&self.path).await?);
        }
        let file = self.file.as_mut().expect("opened above");
        let mut buf = vec![0u8; want];
        tokio::io::AsyncReadExt::read_exact(file, &mut buf).await?;
        Ok(buf)
    }
}

/// One of a participant's `followed_results_max` followed results, given back when the response ends
/// or its client goes away (the stream is dropped).
struct FollowSlot {
    following: Following,
    seq: i64,
}

impl FollowSlot {
    fn take(state: &AppState, seq: i64) -> ApiResult<FollowSlot> {
        let max = state.limits.followed_results_max;
        let mut open = state.following.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(seq).or_default();
        if *n >= max {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!("at most {max} followed results at once (followed_results_max): wait for one to end"),
            ));
        }
        *n += 1;
        Ok(FollowSlot { following: state.following.clone(), seq })
    }
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut open = self.following.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.seq);
            }
        }
    }
}

/// A followed result: sends the result file up to the job's committed length, waits for the runner's
/// next commit, looks again, and ends once the job has succeeded and all of it is sent. Bytes past the
/// committed length (answers read ahead, or torn by a crash) are never sent: a restarted runner cuts
/// them off and writes them again.
struct Follow {
    state: AppState,
    _slot: FollowSlot,
    job: Job,
    result: ResultReader,
    sent: u64,
    stopping: tokio::sync::watch::Receiver<bool>,
    progress: tokio::sync::watch::Receiver<u64>,
}

impl Follow {
    fn new(state: AppState, job: Job, slot: FollowSlot) -> Follow {
        let stopping = state.stopping.subscribe();
        let progress = state.job_progress.clone();
        let result = ResultReader::new(&state, &job);
        Follow { state, _slot: slot, job, result, sent: 0, stopping, progress }
    }

    /// Ends the response before its end: the client cannot take what it got for the whole result.
    fn cut(&self, why: &str) -> std::io::Result<Option<(Vec<u8>, Follow)>> {
        tracing::warn!(job = %self.job.id, sent = self.sent, why, "a followed result was cut off");
        Err(std::io::Error::other(format!("job {}: {why}", self.job.id)))
    }

    async fn next(mut self) -> std::io::Result<Option<(Vec<u8>, Follow)>> {
        loop {
            if *self.stopping.borrow() {
                return self.cut("the server is stopping");
            }
            if self.sent < self.job.result_bytes {
                let buf = match self.result.read(self.sent, self.job.result_bytes).await {
                    Ok(buf) => buf,
                    Err(e) => return self.cut(&format!("the result file is gone: {e}")),
                };
                self.sent += buf.len() as u64;
                return Ok(Some((buf, self)));
            }
            match self.job.state {
                store::JobState::Succeeded => return Ok(None),
                store::JobState::Failed => return self.cut("the job failed"),
                _ => {}
            }
            let runner_gone = tokio::select! {
                changed = self.progress.changed() => changed.is_err(),
                () = tokio::time::sleep(FOLLOW_LOOK_AGAIN) => false,
                // Whatever changed, the check below says whether to stop (the sender lives in the
                // state this stream holds, so this never fails at once in a loop).
                _ = self.stopping.changed() => false,
            };
            if runner_gone {
                // No runner in this process reports: look again now and then.
                tokio::time::sleep(FOLLOW_LOOK_AGAIN).await;
            }
            if *self.stopping.borrow() {
                return self.cut("the server is stopping");
            }
            // Seen before the job is read again: a commit after this wakes the wait above at once.
            self.progress.mark_unchanged();
            self.job = match self.state.store.job(&self.job.id, self.job.owner_seq).await {
                Ok(Some(job)) => job,
                Ok(None) => return self.cut("the job is gone"),
                Err(e) => return self.cut(&format!("reading the job: {e}")),
            };
        }
    }
}

/// Bytes of an upload gathered per write to its spool file.
const SPOOL_WRITE_BYTES: usize = 1024 * 1024;

/// Who may upload a file of this kind.
fn uploaders(kind: JobKind) -> &'static [Role] {
    match kind {
        JobKind::Lifecycle => &[Role::Carrier, Role::Portability],
        JobKind::Bindings | JobKind::Checks => &[Role::Institution],
    }
}

/// What an error of an API upload's body means: a stalled or trickling body (408), or a cut one.
fn body_error(e: axum::Error) -> ApiError {
    if crate::serve::is_body_timeout(&e) {
        return crate::serve::body_timed_out();
    }
    ApiError::invalid(format!("the upload was interrupted: {e}"))
}

/// The API's answer to an upload: `202`, the job's id, and where to follow it.
fn queued(job: &Job) -> ApiResult<Response> {
    let mut headers = HeaderMap::new();
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).map_err(ApiError::internal)?;
    headers.insert(header::LOCATION, location);
    Ok((StatusCode::ACCEPTED, headers, Json(JobCreated { job_id: job.id.to_string() })).into_response())
}

/// An upload of a file of `kind` by the caller, as the API and the console take it: streams the
/// bytes to a spool file, checks the header and the limits, makes the file durable, and queues the
/// job. `interrupted` says what an error of the stream means.
pub(crate) async fn upload<S, E>(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    mut stream: S,
    interrupted: impl Fn(E) -> ApiError,
) -> ApiResult<Job>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let owner = caller.require(uploaders(kind))?.clone();
    let limits = state.limits.files;
    tokio::fs::create_dir_all(&state.spool_dir).await.map_err(ApiError::io)?;
    let name = store::new_id("upload");
    let part = Spool { path: state.spool_dir.join(format!("{name}.csv.part")), keep: false };
    // Written a mebibyte at a time: each write of tokio's file is a hand-over to a blocking thread,
    // and the body arrives in pieces of a few kilobytes.
    let mut file = tokio::io::BufWriter::with_capacity(
        SPOOL_WRITE_BYTES,
        tokio::fs::File::create(&part.path).await.map_err(ApiError::io)?,
    );
    let (mut bytes, mut newlines) = (0u64, 0u64);
    let mut header: Vec<u8> = Vec::new();
    let mut header_done = false;
    let mut last_byte = b'\n';
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(&interrupted)?;
        bytes += chunk.len() as u64;
        if bytes > limits.file_bytes_max {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the file is larger than {} bytes (file_bytes_max)", limits.file_bytes_max),
            ));
        }
        if !header_done {
            let end = chunk.iter().position(|&b| b == b'\n');
            let take = end.unwrap_or(chunk.len());
            header.extend_from_slice(&chunk[..take.min(HEADER_BYTES_MAX.saturating_sub(header.len()))]);
            header_done = end.is_some() || header.len() >= HEADER_BYTES_MAX;
        }
        newlines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(&b) = chunk.last() {
            last_byte = b;
        }
        file.write_all(&chunk).await.map_err(ApiError::io)?;
    }
    file.flush().await.map_err(ApiError::io)?;
    if bytes == 0 {
        return Err(ApiError::invalid("the file is empty: expected a CSV header row and data rows"));
    }
    let format = FileFormat::detect_for(kind, &header).map_err(ApiError::invalid)?;
    let lines = newlines + u64::from(last_byte != b'\n');
    let rows = lines.saturating_sub(1);
    if rows > limits.file_rows_max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file has {rows} rows: at most {} (file_rows_max)", limits.file_rows_max),
        ));
    }
    // Durable before acknowledged: the data, then the name.
    file.get_ref().sync_all().await.map_err(ApiError::io)?;
    drop(file);
    let final_path = state.spool_dir.join(format!("{name}.csv"));
    tokio::fs::rename(&part.path, &final_path).await.map_err(ApiError::io)?;
    let spooled = Spool { path: final_path, keep: false };
    sync_dir(&state.spool_dir).await?;
    let kept = format!("{name}.csv");
    if state.store.shares_files() {
        // Every node may run the job: the database keeps the file for them, before it is queued.
        state.store.keep_file(kept.clone(), spooled.path.clone()).await?;
    }
    let job = match state.store.create_job(owner, kind, format.as_str().into(), &spooled.path).await {
        Ok(job) => job,
        Err(e) => {
            // No job names the kept file: it goes (a process that dies just here leaves it behind).
            if state.store.shares_files()
                && let Err(drop) = state.store.drop_kept_file(kept).await
            {
                tracing::warn!(error = %drop, "a kept file no job names was not dropped");
            }
            return Err(e.into());
        }
    };
    // Where the database keeps it, this node's copy goes: the node that runs the job fetches its own.
    let mut spooled = spooled;
    spooled.keep = !state.store.shares_files();
    state.jobs_wake.notify_one();
    tracing::info!(job = %job.id, kind = kind.as_str(), bytes, rows, format = format.as_str(), "file queued");
    Ok(job)
}

async fn sync_dir(dir: &Path) -> ApiResult<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Refuses a job whose outputs were deleted (retention, or by its owner).
fn outputs_kept(job: &Job) -> ApiResult<()> {
    match &job.outputs_deleted_at {
        None => Ok(()),
        Some(at) => Err(ApiError::new(
            ErrorCode::Gone,
            format!(
                "job \"{}\"'s outputs were deleted on {at}, after the retention period: upload the file again",
                job.id
            ),
        )),
    }
}

/// One of the caller's jobs; another's, or none, is the same 404.
pub(crate) async fn own_job(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Job> {
    let no_job =
        || ApiError::new(ErrorCode::NotFound, format!("no job \"{}\"", domain::number::truncate_for_message(id)));
    let Some(job_id) = JobId::parse(id) else { return Err(no_job()) };
    state.store.job(&job_id, caller.0.seq).await?.ok_or_else(no_job)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// How many of the newest jobs: 1 to page_rows_max, default 100.
    pub limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "Jobs",
    summary = "Your newest jobs (the files you uploaded), newest first",
    params(JobsQuery),
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 400, description = "INVALID_ARGUMENT: bad limit", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<JobsQuery>,
) -> ApiResult<Json<JobList>> {
    let limit = crate::routes::bindings::page_limit(&state, q.limit)?;
    let jobs = state.store.jobs_of(caller.0.seq, limit).await?;
    Ok(Json(JobList { jobs: jobs.into_iter().map(Into::into).collect() }))
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "Jobs",
    summary = "A job's state and progress (visible to its owner only)",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such job, or not yours", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(own_job(&state, &caller, &id).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "Jobs",
    summary = "Delete an ended job, with its result and rejected rows",
    description = "For a job that has succeeded or failed: its files (a check file's answers) and its rejected rows are \
                   deleted at once, rather than 7 days after it ended. The audit log keeps what the job did.",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such job, or not yours", body = ErrorInfo),
        (status = 409, description = "CONFLICT: the job is still queued or running", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn delete_job(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<StatusCode> {
    let job = own_job(&state, &caller, &id).await?;
    let not_ended = || {
        ApiError::new(
            ErrorCode::Conflict,
            format!("job \"{}\" is {}: delete it once it has ended", job.id, job.state.as_str()),
        )
    };
    if !job.state.is_final() {
        return Err(not_ended());
    }
    // Files first: a job gone from the table would leave them for good.
    workers::upkeep::remove_job_files(&job).await.map_err(ApiError::internal)?;
    match state.store.delete_job(caller.0.clone(), &job.id).await? {
        store::JobDeleted::Deleted => Ok(StatusCode::NO_CONTENT),
        store::JobDeleted::NotFound => Err(ApiError::new(ErrorCode::NotFound, format!("no job \"{}\"", job.id))),
        store::JobDeleted::NotEnded => Err(not_ended()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/rejections",
    tag = "Jobs",
    summary = "The rejected rows of a job, as CSV: line,code,message",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "CSV, one row per rejected line, in line order", body = String, content_type = "text/csv"),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such job, or not yours", body = ErrorInfo),
        (status = 410, description = "GONE: the rejected rows were deleted after the retention period", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn job_rejections(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let job = own_job(&state, &caller, &id).await?;
    outputs_kept(&job)?;
    let page = state.limits.page_rows_max;
    let store = state.store.clone();
    // Streamed page by page: a file with millions of bad rows is never held whole.
    let pages = futures_util::stream::unfold(Some(0u64), move |after| {
        let (store, id) = (store.clone(), job.id.clone());
        async move {
            let after = after?;
            match store.job_rejections(&id, after, page).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = rows.last().map(|r| r.line);
                    let mut out = csv::Writer::from_writer(Vec::new());
                    for r in &rows {
                        // A message quotes the caller's input: never let it start a formula.
                        let message = workers::files::csv_cell(&r.message);
                        let _ = out.write_record([r.line.to_string().as_str(), r.code.as_str(), &message]);
                    }
                    let buf = out.into_inner().unwrap_or_default();
                    Some((Ok::<_, std::io::Error>(buf), if rows.len() < page as usize { None } else { next }))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let head = futures_util::stream::once(async { Ok::<_, std::io::Error>(b"line,code,message\n".to_vec()) });
    let body = Body::from_stream(head.chain(pages));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}
