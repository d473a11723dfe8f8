//! Files in the console: a carrier's lifecycle files, an institution's binding and check files. The
//! upload is a plain multipart form (no script needed), streamed to the same spool and job as the
//! API's upload (`routes::files::upload`); the job's page shows its counts as it runs (the script
//! asks `/console/jobs/{id}/progress` each second; without it, a link refreshes), and offers the
//! rejected rows and a check file's answers for download through the API's own handlers.

use askama::Template;
use axum::Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use store::{Job, JobKind, JobState, Role};

use super::super::forms::Form;
use super::super::{Chrome, Ctx, Lang, see_other};
use super::CONSOLE_HOME;
use super::SignedIn;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::routes::files;
use crate::state::AppState;

/// Jobs listed on the files page (the newest).
const JOBS_LISTED: u32 = 20;
/// Bytes of the form's CSRF field read (a token is far shorter).
const CSRF_FIELD_BYTES_MAX: usize = 512;

/// The kinds of file a participant of `role` uploads here.
fn kinds_of(role: Role) -> &'static [JobKind] {
    match role {
        Role::Institution => &[JobKind::Bindings, JobKind::Checks],
        Role::Carrier | Role::Portability => &[JobKind::Lifecycle],
        Role::Regulator => &[],
    }
}

/// A kind's words: its name, and the header its file begins with.
fn kind_words(lang: Lang, kind: JobKind) -> String {
    lang.t(&format!("file-kind-{}", kind.as_str()))
}

/// An upload form on the files page.
pub struct UploadForm {
    pub kind: &'static str,
    pub title: String,
    pub hint: String,
}

/// A job on the files page.
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub state: &'static str,
    pub state_words: String,
    pub created: String,
    pub counts: String,
}

#[derive(Template)]
#[template(path = "console_files.html")]
pub(super) struct FilesPage {
    c: Chrome,
    forms: Vec<UploadForm>,
    jobs: Vec<JobRow>,
    /// Why the last upload was refused: its form's kind, and the words.
    alert: Option<(&'static str, String)>,
    max_size: String,
}

fn state_words(lang: Lang, state: JobState) -> (&'static str, String) {
    let s = state.as_str();
    (s, lang.t(&format!("job-state-{s}")))
}

/// The counts of a job, in a line.
fn counts(lang: Lang, j: &Job) -> String {
    let n = |v: u64| v.to_string();
    match j.kind {
        JobKind::Checks => lang.t_args(
            "job-counts-checks",
            &[("read", &n(j.rows_read)), ("answered", &n(j.accepted)), ("rejected", &n(j.rejected))],
        ),
        _ => lang.t_args(
            "job-counts",
            &[
                ("read", &n(j.rows_read)),
                ("accepted", &n(j.accepted)),
                ("duplicates", &n(j.duplicates)),
                ("pending", &n(j.pending)),
                ("rejected", &n(j.rejected)),
            ],
        ),
    }
}

async fn files_page(ctx: &Ctx, caller: &Caller, alert: Option<(&'static str, String)>, status: StatusCode) -> Response {
    let role = caller.0.role;
    if kinds_of(role).is_empty() {
        return ctx.refused_for(caller, ApiError::new(ErrorCode::PermissionDenied, "no files for this role"));
    }
    let jobs = match ctx.state.store.jobs_of(caller.0.seq, JOBS_LISTED).await {
        Ok(j) => j,
        Err(e) => return ctx.refused_for(caller, e.into()),
    };
    let lang = ctx.lang;
    let tz = &ctx.state.holder.config.time_zone;
    let forms = kinds_of(role)
        .iter()
        .map(|&k| UploadForm {
            kind: k.as_str(),
            title: kind_words(lang, k),
            hint: lang.t(&format!("file-hint-{}", k.as_str())),
        })
        .collect();
    let jobs = jobs
        .iter()
        .map(|j| {
            let (state, state_words) = state_words(lang, j.state);
            JobRow {
                id: j.id.to_string(),
                kind: kind_words(lang, j.kind),
                state,
                state_words,
                created: lang.stored_moment(&j.created_at, tz),
                counts: counts(lang, j),
            }
        })
        .collect();
    let gib = ctx.state.limits.files.file_bytes_max as f64 / f64::from(1u32 << 30);
    let max_size = lang.t_args("file-max-size", &[("gib", &format!("{gib:.0}"))]);
    let html =
        FilesPage { c: ctx.console_chrome("/console/files", caller, "files"), forms, jobs, alert, max_size }.render();
    ctx.render(status, html)
}

/// `GET /console/files`: the upload forms of the participant's kinds of file, and its newest jobs.
pub async fn files(SignedIn { ctx, caller }: SignedIn) -> Response {
    files_page(&ctx, &caller, None, StatusCode::OK).await
}

/// Reads the form's first field, which must be its CSRF token (its size bounded by the multipart
/// reader's constraints).
async fn csrf_field(multipart: &mut multer::Multipart<'_>) -> Option<String> {
    let field = multipart.next_field().await.ok()??;
    if field.name() != Some("csrf") {
        return None;
    }
    field.text().await.ok()
}

/// Why an upload's body could not be read.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// `POST /console/files/{kind}`: a multipart form, its CSRF token first and the file after, which is
/// streamed to the spool as the API's upload is. On to the job's page; refused, the files page says
/// why.
///
/// Nothing of the body is read without a session. Until the file's part begins, at most
/// `body_bytes_max` bytes pass to the multipart reader (which holds what it has not parsed, a
/// preamble or a part's headers, in memory); then the file streams, `file_bytes_max` at most.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { ctx, caller }: SignedIn,
    Path(kind): Path<String>,
    body: Body,
) -> Response {
    let boundary =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        return ctx.problem(StatusCode::BAD_REQUEST, "bad-form", CONSOLE_HOME);
    };
    let head_max = state.limits.body_bytes_max as u64;
    let released = Arc::new(AtomicBool::new(false));
    let mut head = 0u64;
    let body = {
        let released = released.clone();
        body.into_data_stream().map(move |chunk| -> Result<bytes::Bytes, BodyError> {
            let chunk = chunk?;
            if !released.load(Ordering::Relaxed) {
                head += chunk.len() as u64;
                if head > head_max {
                    return Err(format!("the form's fields before the file are over {head_max} bytes").into());
                }
            }
            Ok(chunk)
        })
    };
    let constraints = multer::Constraints::new().allowed_fields(vec!["csrf", "file"]).size_limit(
        multer::SizeLimit::new()
            .whole_stream(state.limits.files.file_bytes_max.saturating_add(head_max))
            .for_field("csrf", CSRF_FIELD_BYTES_MAX as u64),
    );
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    // The token is checked before anything else is done.
    let token = csrf_field(&mut multipart).await.unwrap_or_default();
    let form = Form(vec![("csrf".into(), token)]);
    if let Err(page) = ctx.posted_from(&headers, Ok(form), CONSOLE_HOME) {
        return page;
    }
    let Some(kind) = JobKind::parse(&kind) else {
        return ctx.refused_for(&caller, ApiError::new(ErrorCode::NotFound, "no such kind of file here"));
    };
    // As the API answers a file of another role's (`POST /v1/binding-files` from a carrier).
    if !kinds_of(caller.0.role).contains(&kind) {
        return ctx
            .refused_for(&caller, ApiError::new(ErrorCode::PermissionDenied, "not a kind of file for this role"));
    }
    let field = match multipart.next_field().await {
        Ok(Some(f)) if f.name() == Some("file") && f.file_name().is_some_and(|n| !n.is_empty()) => f,
        _ => {
            let alert = ctx.lang.t("file-none");
            return files_page(&ctx, &caller, Some((kind.as_str(), alert)), StatusCode::BAD_REQUEST).await;
        }
    };
    // The file's part has begun: its bytes are spooled as they come.
    released.store(true, Ordering::Relaxed);
    let chunks = futures_util::stream::unfold(field, |mut f| async move {
        match f.chunk().await {
            Ok(Some(b)) => Some((Ok(b), f)),
            Ok(None) => None,
            Err(e) => Some((Err(e), f)),
        }
    });
    let interrupted = |e: multer::Error| ApiError::invalid(format!("the upload was interrupted: {e}"));
    match files::upload(&state, &caller, kind, std::pin::pin!(chunks), interrupted).await {
        Ok(job) => see_other(&format!("/console/jobs/{}", job.id)),
        Err(e) if matches!(e.code, ErrorCode::InvalidArgument | ErrorCode::PayloadTooLarge) => {
            let key = if e.code == ErrorCode::PayloadTooLarge { "file-too-large" } else { "file-refused" };
            let alert = ctx.lang.t_args(key, &[("why", &e.message)]);
            files_page(&ctx, &caller, Some((kind.as_str(), alert)), e.code.status()).await
        }
        Err(e) => ctx.refused_for(&caller, e),
    }
}

/// Where a job's file stands: the bytes applied, and the file's size while it is kept; or for a file
/// applied in number order, the rows applied of the rows counted.
async fn progress_of(job: &Job) -> (u64, Option<u64>) {
    if job.in_number_order {
        let done =
            if job.state == JobState::Succeeded { job.rows_total.unwrap_or(job.rows_read) } else { job.rows_read };
        return (done, job.rows_total);
    }
    let size = tokio::fs::metadata(&job.spool_path).await.ok().map(|m| m.len());
    let done = if job.state == JobState::Succeeded { size.unwrap_or(job.byte_offset) } else { job.byte_offset };
    (done, size)
}

#[derive(Template)]
#[template(path = "console_job.html")]
pub(super) struct JobPage {
    c: Chrome,
    id: String,
    kind: String,
    state: &'static str,
    state_words: String,
    ended: bool,
    created: String,
    updated: String,
    /// (label, value, the field the script updates).
    counts: Vec<(String, u64, &'static str)>,
    /// The share of the file's bytes applied, while the file is kept.
    percent: Option<u64>,
    error: Option<String>,
    rejections: bool,
    answers: bool,
    outputs_deleted: Option<String>,
}

/// `GET /console/jobs/{id}`: a job's state and counts, with its downloads once it has ended.
pub async fn job(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let j = match files::own_job(&state, &caller, &id).await {
        Ok(j) => j,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let lang = ctx.lang;
    let tz = &state.holder.config.time_zone;
    let (state_key, state_words) = state_words(lang, j.state);
    let (done, size) = progress_of(&j).await;
    let kept = j.outputs_deleted_at.is_none();
    let mut counts = vec![(lang.t("job-read"), j.rows_read, "rowsRead")];
    if j.kind == JobKind::Checks {
        counts.push((lang.t("job-answered"), j.accepted, "accepted"));
    } else {
        counts.push((lang.t("job-accepted"), j.accepted, "accepted"));
        counts.push((lang.t("job-duplicates"), j.duplicates, "duplicates"));
    }
    if j.kind == JobKind::Lifecycle {
        counts.push((lang.t("job-pending"), j.pending, "pending"));
    }
    counts.push((lang.t("job-rejected"), j.rejected, "rejected"));
    let page = JobPage {
        c: ctx.console_chrome(&format!("/console/jobs/{}", j.id), &caller, "files"),
        id: j.id.to_string(),
        kind: kind_words(lang, j.kind),
        state: state_key,
        state_words,
        ended: j.state.is_final(),
        created: lang.stored_moment(&j.created_at, tz),
        updated: lang.stored_moment(&j.updated_at, tz),
        counts,
        percent: size.filter(|s| *s > 0).map(|s| (done.min(s) * 100) / s),
        error: j.error.clone(),
        rejections: kept && j.rejected > 0,
        answers: kept && j.kind == JobKind::Checks && j.state == JobState::Succeeded,
        outputs_deleted: j
            .outputs_deleted_at
            .as_deref()
            .map(|at| lang.t_args("job-outputs-deleted", &[("when", &lang.stored_moment(at, tz))])),
    };
    ctx.render(StatusCode::OK, page.render())
}

/// `GET /console/jobs/{id}/progress`: the job's counts as JSON, for the page's script.
pub async fn job_progress(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match files::own_job(&state, &caller, &id).await {
        Ok(j) => {
            let (done, size) = progress_of(&j).await;
            let body = serde_json::json!({
                "state": j.state.as_str(),
                "stateWords": state_words(ctx.lang, j.state).1,
                "ended": j.state.is_final(),
                "rowsRead": j.rows_read,
                "accepted": j.accepted,
                "duplicates": j.duplicates,
                "pending": j.pending,
                "rejected": j.rejected,
                "done": done,
                "size": size,
            });
            let mut resp = Json(body).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// A download of a job's output through the API's own handler, named for the browser to save.
fn download(resp: Result<Response, ApiError>, ctx: &Ctx, caller: &Caller, name: String) -> Response {
    match resp {
        Ok(mut r) => {
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => ctx.refused_for(caller, e),
    }
}

/// `GET /console/jobs/{id}/rejections.csv`: the rejected rows, `line,code,message`.
pub async fn rejections(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let resp = files::job_rejections(State(state.clone()), caller.clone(), Path(id.clone())).await;
    download(resp, &ctx, &caller, format!("{}-rejected.csv", safe_name(&id)))
}

/// `GET /console/jobs/{id}/result.csv`: a check file's answers, once it has succeeded.
pub async fn answers(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let q = crate::json::StrictQuery(files::ResultQuery { follow: None });
    let resp = files::job_result(State(state.clone()), caller.clone(), Path(id.clone()), q).await;
    download(resp, &ctx, &caller, format!("{}-answers.csv", safe_name(&id)))
}

/// An id fit for a file name (a job id is; anything else is cut to what is).
fn safe_name(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{assert_all_worded, test_chrome};
    use super::*;

    /// The files page and a job's page in every state, in both languages.
    #[test]
    fn file_pages_render_in_both_languages() {
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            for role in [Role::Institution, Role::Carrier] {
                let forms = kinds_of(role)
                    .iter()
                    .map(|&k| UploadForm {
                        kind: k.as_str(),
                        title: kind_words(lang, k),
                        hint: lang.t(&format!("file-hint-{}", k.as_str())),
                    })
                    .collect();
                let jobs = [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed]
                    .iter()
                    .map(|&s| {
                        let (state, state_words) = state_words(lang, s);
                        JobRow {
                            id: "job_0".into(),
                            kind: kind_words(lang, JobKind::Checks),
                            state,
                            state_words,
                            created: "x".into(),
                            counts: lang
                                .t_args("job-counts-checks", &[("read", "1"), ("answered", "1"), ("rejected", "0")]),
                        }
                    })
                    .collect();
                let alert = Some(("bindings", lang.t_args("file-refused", &[("why", "x")])));
                let page = FilesPage {
                    c: test_chrome(lang, role),
                    forms,
                    jobs,
                    alert,
                    max_size: lang.t_args("file-max-size", &[("gib", "4")]),
                };
                pages.push(page.render().unwrap());
            }
            lang.t_args("file-too-large", &[("why", "x")]);
            lang.t("file-none");
            lang.t_args(
                "job-counts",
                &[("read", "1"), ("accepted", "1"), ("duplicates", "0"), ("pending", "0"), ("rejected", "0")],
            );
            for kind in [JobKind::Lifecycle, JobKind::Bindings, JobKind::Checks] {
                for (i, s) in [JobState::Running, JobState::Succeeded, JobState::Failed].into_iter().enumerate() {
                    let (state, state_words) = state_words(lang, s);
                    let page = JobPage {
                        c: test_chrome(lang, Role::Institution),
                        id: "job_0".into(),
                        kind: kind_words(lang, kind),
                        state,
                        state_words,
                        ended: s.is_final(),
                        created: "x".into(),
                        updated: "x".into(),
                        counts: [
                            "job-read",
                            "job-accepted",
                            "job-answered",
                            "job-duplicates",
                            "job-pending",
                            "job-rejected",
                        ]
                        .iter()
                        .map(|k| (lang.t(k), 1, "rowsRead"))
                        .collect(),
                        percent: (i == 0).then_some(50),
                        error: (s == JobState::Failed).then(|| "x".into()),
                        rejections: i == 1,
                        answers: i == 1,
                        outputs_deleted: (i == 2).then(|| lang.t_args("job-outputs-deleted", &[("when", "x")])),
                    };
                    pages.push(page.render().unwrap());
                }
            }
        }
        assert_all_worded(&pages);
    }
}
