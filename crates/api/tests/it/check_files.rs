//! Check files: a CSV of (number, date) answered from the index as a job, the result streamed back in
//! input order with bad rows answered by their error code, every number audited; a crash midway
//! leaves no row twice or missing in the result.

use api::Limits;
use axum::body::Body;
use axum::http::Method;
use http_body_util::BodyExt;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::{TestApp, assert_error};

backend_tests!(
    a_check_file_is_answered_in_order,
    bad_rows_keep_their_place_across_chunks,
    a_crash_midway_leaves_the_result_whole,
    a_followed_result_arrives_as_chunks_commit,
    a_followed_result_is_cut_off_if_the_job_fails_or_the_server_stops,
    results_are_deleted_after_their_retention_or_on_request,
);

async fn upload(app: &TestApp, key: &str, csv: &str) -> crate::Resp {
    app.request(
        Method::POST,
        "/v1/check-files",
        Some(key),
        &[("content-type", "text/csv")],
        Body::from(csv.to_string()),
    )
    .await
}

/// Uploads a check file that must be accepted; its job's id.
async fn upload_job(app: &TestApp, key: &str, csv: &str) -> String {
    let r = upload(app, key, csv).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["jobId"].as_str().unwrap().to_string()
}

/// An app answering check files `chunk_rows` rows at a time (other limits as `limits` leaves them),
/// with the history of [`history`] and a bank; the bank's key.
async fn chunked(db: TestDb, chunk_rows: usize, limits: impl FnOnce(&mut Limits)) -> (TestApp, String) {
    let mut l = Limits::default();
    l.files.check_chunk_rows = chunk_rows;
    limits(&mut l);
    let app = TestApp::with_limits(db, l);
    history(&app).await;
    let bank = app.institution().await;
    (app, bank)
}

/// The one file in the spool whose name `wanted` picks.
fn spooled(app: &TestApp, wanted: impl Fn(&str) -> bool) -> std::path::PathBuf {
    std::fs::read_dir(app.spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| wanted(&p.to_string_lossy()))
        .expect("a file in the spool")
}

/// Whether a job's result is kept: in its file beside the spooled input, or where the database keeps
/// files for every node (PostgreSQL), there.
async fn result_kept(app: &TestApp, job: &store::Job) -> bool {
    if app.store.shares_files() {
        app.store.file_part(job.result_file_name(), 0).await.unwrap().is_some()
    } else {
        std::path::Path::new(&job.result_path()).exists()
    }
}

/// A check file of ten rows and its result.
fn ten_rows() -> (String, String) {
    let mut csv = String::from("phone_number,date\n");
    let mut expected = String::from("phone_number,date,answer\n");
    for i in 0..10 {
        let d = if i % 2 == 0 { "2023-12-22" } else { "2024-10-01" };
        csv.push_str(&format!("+8613800138000,{d}\n"));
        expected.push_str(&format!("+8613800138000,{d},{}\n", if i % 2 == 0 { "yes" } else { "no" }));
    }
    (csv, expected)
}

/// The next piece of a streamed body: `Ok(None)` at its end, `Err` if it was cut off.
async fn next_piece(body: &mut Body) -> Result<Option<String>, String> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(String::from_utf8(data.to_vec()).unwrap()));
                }
            }
        }
    }
}

/// The rest of a streamed body, and how it ended.
async fn rest(mut body: Body) -> (String, Result<(), String>) {
    let mut got = String::new();
    loop {
        match next_piece(&mut body).await {
            Ok(Some(piece)) => got.push_str(&piece),
            Ok(None) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// The first `rows` rows of a result (with its header).
fn head(result: &str, rows: usize) -> &str {
    &result[..=result.match_indices('\n').nth(rows).unwrap().0]
}

async fn history(app: &TestApp) -> String {
    let carrier = app.carrier().await;
    app.accept(
        &carrier,
        json!([
            {"eventId": "d", "phoneNumber": "+8613800138000", "type": "disconnected", "date": "2024-02-25"},
            {"eventId": "a", "phoneNumber": "+8613800138000", "type": "activated", "date": "2024-09-21"},
        ]),
    )
    .await;
    carrier
}

async fn a_check_file_is_answered_in_order(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = history(&app).await;
    let bank = app.institution().await;
    let csv = "phone_number,date\n\
               +8613800138000,2023-12-22\n\
               +8613800138000,2024-10-01\n\
               +86bad,2024-01-01\n\
               +8613800138001,2019-06-01\n\
               +4915112345678,2024-01-01\n\
               +8613800138000,2031-01-01\n\
               +8613800138000\n\
               =HYPERLINK(\"http://evil\"),2024-01-01\n\
               @SUM(A1),-1\n";
    let id = upload_job(&app, &bank, csv).await;
    // Not ready before the runner has answered it.
    assert_error(&app.get(&format!("/v1/jobs/{id}/result"), &bank).await, 409, "CONFLICT");
    app.runner.run_until_idle().await.unwrap();
    let job = app.get(&format!("/v1/jobs/{id}"), &bank).await.body;
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("checks"), Some("succeeded"), Some(5), Some(4)),
        "{job}"
    );
    assert_eq!(job["result"], format!("/v1/jobs/{id}/result"));
    let r = app.get(&format!("/v1/jobs/{id}/result"), &bank).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.text,
        "phone_number,date,answer\n\
         +8613800138000,2023-12-22,yes\n\
         +8613800138000,2024-10-01,no\n\
         '+86bad,2024-01-01,INVALID_ARGUMENT\n\
         +8613800138001,2019-06-01,no_data\n\
         +4915112345678,2024-01-01,no_data\n\
         +8613800138000,2031-01-01,OUT_OF_RANGE\n\
         +8613800138000,,INVALID_ARGUMENT\n\
         \"'=HYPERLINK(\"\"http://evil\"\")\",2024-01-01,INVALID_ARGUMENT\n\
         '@SUM(A1),'-1,INVALID_ARGUMENT\n",
        "an echoed cell that would start a formula starts with a quote; numlink's own values are as they are"
    );
    // The bad rows are listed with their lines, as for any file.
    let rej = app.get(&format!("/v1/jobs/{id}/rejections"), &bank).await;
    assert!(rej.text.contains("\n4,INVALID_ARGUMENT,") && rej.text.contains("\n8,INVALID_ARGUMENT,"), "{}", rej.text);
    // Every number checked is audited, as a single check is.
    let logged = app.store.logged_checks(100).await.unwrap();
    assert_eq!(
        logged.iter().map(|c| (c.job.as_deref(), c.answer.as_str())).collect::<Vec<_>>(),
        ["yes", "no", "no_data", "no_data", "OUT_OF_RANGE"].map(|a| (Some(id.as_str()), a)).to_vec()
    );
    // Only the owner sees it; other jobs have no result; the header must be a check file's.
    let other = app.institution().await;
    assert_error(&app.get(&format!("/v1/jobs/{id}/result"), &other).await, 404, "NOT_FOUND");
    let lifecycle = app.upload_and_apply(&carrier, "phone_number,disconnect_date\n+8613800138005,2024-01-01\n").await;
    let lid = lifecycle["id"].as_str().unwrap();
    assert_error(&app.get(&format!("/v1/jobs/{lid}/result"), &carrier).await, 404, "NOT_FOUND");
    assert_error(&upload(&app, &bank, "number,when\n+8613800138000,2024-01-01\n").await, 400, "INVALID_ARGUMENT");
    assert_error(&upload(&app, &carrier, csv).await, 403, "PERMISSION_DENIED");
}

/// Chunks of two rows: a bad row first in a chunk, last in one, a chunk of bad rows only, a bad row
/// with a quote in it; every row stays where it was in the file, and the counts add up.
async fn bad_rows_keep_their_place_across_chunks(db: TestDb) {
    let (app, bank) = chunked(db, 2, |_| {}).await;
    let csv = "phone_number,date\n\
               +86bad,2024-01-01\n\
               +8613800138000,2023-12-22\n\
               +8613800138000,2024-10-01\n\
               +8613800138000,2024-13-01\n\
               \"+86,\"\"q\"\"\",2024-01-01\n\
               ,\n\
               +8613800138000,2023-12-22\n";
    let id = upload_job(&app, &bank, csv).await;
    app.runner.run_until_idle().await.unwrap();
    let job = app.get(&format!("/v1/jobs/{id}"), &bank).await.body;
    assert_eq!(
        (job["state"].as_str(), job["rowsRead"].as_u64(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("succeeded"), Some(7), Some(3), Some(4)),
        "{job}"
    );
    let r = app.get(&format!("/v1/jobs/{id}/result"), &bank).await;
    assert_eq!(
        r.text,
        "phone_number,date,answer\n\
         '+86bad,2024-01-01,INVALID_ARGUMENT\n\
         +8613800138000,2023-12-22,yes\n\
         +8613800138000,2024-10-01,no\n\
         +8613800138000,2024-13-01,INVALID_ARGUMENT\n\
         \"'+86,\"\"q\"\"\",2024-01-01,INVALID_ARGUMENT\n\
         ,,INVALID_ARGUMENT\n\
         +8613800138000,2023-12-22,yes\n"
    );
    let rej = app.get(&format!("/v1/jobs/{id}/rejections"), &bank).await;
    for line in [2, 5, 6, 7] {
        assert!(rej.text.contains(&format!("\n{line},INVALID_ARGUMENT,")), "line {line}: {}", rej.text);
    }
    let logged = app.store.logged_checks(100).await.unwrap();
    assert_eq!(logged.iter().map(|c| c.answer.as_str()).collect::<Vec<_>>(), ["yes", "no", "yes"]);
}

async fn a_crash_midway_leaves_the_result_whole(db: TestDb) {
    let (app, bank) = chunked(db, 3, |_| {}).await;
    let (csv, expected) = ten_rows();
    let id = upload_job(&app, &bank, &csv).await;
    // Two chunks commit; the chunks read ahead while they committed may be in the result file, but
    // the process stops before their commit; then a torn write past them (bytes past the committed
    // length).
    assert!(app.runner.run_chunks(2).await.unwrap());
    let job = app.get(&format!("/v1/jobs/{id}"), &bank).await;
    assert_eq!(job.body["rowsRead"], 6, "{}", job.text);
    if app.store.shares_files() {
        // The database keeps the answers, each chunk's with its commit: none are on this node's disk.
        let names: Vec<String> = std::fs::read_dir(app.spool.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".result.csv")), "{names:?}");
    } else {
        // The result file is beside the spooled input.
        let result_path = spooled(&app, |p| p.ends_with(".result.csv"));
        let written = std::fs::read_to_string(&result_path).unwrap();
        assert!(written.starts_with(head(&expected, 6)), "{written}");
        let mut f = std::fs::OpenOptions::new().append(true).open(&result_path).unwrap();
        std::io::Write::write_all(&mut f, b"+8613800138000,2023-12-22,yes\n+86138").unwrap();
        drop(f);
    }
    let app = app.restart();
    app.runner.run_until_idle().await.unwrap();
    let r = app.get(&format!("/v1/jobs/{id}/result"), &bank).await;
    assert_eq!(r.text, expected);
    assert_eq!(app.store.logged_checks(1000).await.unwrap().len(), 10, "each number audited once");
    assert_eq!(app.store.verify_audit().await.unwrap().first_broken, None);
}

/// `?follow=true`: the answers as each chunk commits (never past the committed length, though the
/// chunks read ahead are already in the file), to the end of the job; once it has succeeded, the
/// plain result.
async fn a_followed_result_arrives_as_chunks_commit(db: TestDb) {
    let (app, bank) = chunked(db, 3, |l| l.followed_results_max = 1).await;
    let (csv, expected) = ten_rows();
    let id = upload_job(&app, &bank, &csv).await;
    let resp = app.get_streamed(&format!("/v1/jobs/{id}/result?follow=true"), &bank).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.headers().get("content-length").is_none(), "its length is not known yet");
    let mut body = resp.into_body();
    // One open at a time here (followed_results_max).
    assert_error(&app.get(&format!("/v1/jobs/{id}/result?follow=true"), &bank).await, 429, "TOO_MANY_REQUESTS");
    assert!(app.runner.run_chunks(1).await.unwrap());
    assert_eq!(next_piece(&mut body).await, Ok(Some(head(&expected, 3).to_string())), "the first chunk, alone");
    app.runner.run_until_idle().await.unwrap();
    let (got, end) = rest(body).await;
    assert_eq!((format!("{}{got}", head(&expected, 3)), end), (expected.clone(), Ok(())));
    let r = app.get(&format!("/v1/jobs/{id}/result?follow=true"), &bank).await;
    assert_eq!((r.status, r.headers["content-length"].to_str().unwrap()), (200, expected.len().to_string().as_str()));
    assert_eq!(r.text, expected);
    for q in ["follow=maybe", "folow=true"] {
        assert_error(&app.get(&format!("/v1/jobs/{id}/result?{q}"), &bank).await, 400, "INVALID_ARGUMENT");
    }
    // The slot is given back when a followed result ends, or when its client goes away.
    let next = upload_job(&app, &bank, &csv).await;
    let gone = app.get_streamed(&format!("/v1/jobs/{next}/result?follow=true"), &bank).await;
    assert_eq!(gone.status(), 200);
    drop(gone);
    assert_eq!(app.get_streamed(&format!("/v1/jobs/{next}/result?follow=true"), &bank).await.status(), 200);
    // Only the owner follows it.
    let other = app.institution().await;
    assert_error(&app.get(&format!("/v1/jobs/{id}/result?follow=true"), &other).await, 404, "NOT_FOUND");
}

/// A followed result whose job fails midway, or whose server begins to stop, ends in an error after
/// the answers committed so far: no client can take it for the whole result.
async fn a_followed_result_is_cut_off_if_the_job_fails_or_the_server_stops(db: TestDb) {
    let (app, bank) = chunked(db, 3, |_| {}).await;
    let (csv, expected) = ten_rows();
    let id = upload_job(&app, &bank, &csv).await;
    let mut body = app.get_streamed(&format!("/v1/jobs/{id}/result?follow=true"), &bank).await.into_body();
    assert!(app.runner.run_chunks(1).await.unwrap());
    assert_eq!(next_piece(&mut body).await, Ok(Some(head(&expected, 3).to_string())));
    // The spooled file goes missing (and from the database, which keeps it for every node on
    // PostgreSQL): the job fails at its next chunk.
    std::fs::remove_file(spooled(&app, |p| p.ends_with(".csv") && !p.ends_with(".result.csv"))).unwrap();
    app.db.exec("DELETE FROM file_parts WHERE name NOT LIKE '%.result.csv'");
    app.runner.run_until_idle().await.unwrap();
    assert_eq!(app.get(&format!("/v1/jobs/{id}"), &bank).await.body["state"], "failed");
    let (got, end) = rest(body).await;
    assert_eq!(got, "", "nothing past the committed answers");
    assert!(end.is_err(), "the body is cut off");
    assert_error(&app.get(&format!("/v1/jobs/{id}/result?follow=true"), &bank).await, 409, "CONFLICT");

    // When the server begins to stop: a follower behind (answers committed that it has not read yet)
    // and one waiting for a queued job are both cut off, so that neither holds the shutdown.
    let behind = upload_job(&app, &bank, &csv).await;
    assert!(app.runner.run_chunks(1).await.unwrap());
    let mut late = app.get_streamed(&format!("/v1/jobs/{behind}/result?follow=true"), &bank).await.into_body();
    let waiting = upload_job(&app, &bank, &csv).await;
    let body = app.get_streamed(&format!("/v1/jobs/{waiting}/result?follow=true"), &bank).await.into_body();
    let reading = tokio::spawn(rest(body));
    app.stopping.send_replace(true);
    let (got, end) = reading.await.unwrap();
    assert_eq!((got.as_str(), end.is_err()), ("", true));
    assert!(next_piece(&mut late).await.is_err(), "cut off, though answers are committed");
}

/// A check file's answers, and its rejected rows, are kept 7 days after the job ended, then deleted
/// from the disk and the database (the counts stay); the owner may delete a job at once, not while it
/// runs.
async fn results_are_deleted_after_their_retention_or_on_request(db: TestDb) {
    let app = TestApp::new(db);
    history(&app).await;
    let bank = app.institution().await;
    let csv = "phone_number,date\n+8613800138000,2023-12-22\nnope,2024-01-01\n";
    let kept = upload_job(&app, &bank, csv).await;
    let deleted = upload_job(&app, &bank, csv).await;
    // Not while it waits to run.
    let del = |id: &str| {
        let path = format!("/v1/jobs/{id}");
        let (app, bank) = (&app, bank.clone());
        async move { app.delete(&path, &bank).await }
    };
    assert_error(&del(&deleted).await, 409, "CONFLICT");
    app.runner.run_until_idle().await.unwrap();
    let owner = app.store.authenticate(&bank).await.unwrap().unwrap().seq;
    let kept_job = app.store.job(&store::JobId::parse(&kept).unwrap(), owner).await.unwrap().unwrap();
    assert!(result_kept(&app, &kept_job).await);
    // Deleted on request: the file, the rejections, the job.
    let other = app.store.job(&store::JobId::parse(&deleted).unwrap(), owner).await.unwrap().unwrap();
    assert!(result_kept(&app, &other).await);
    assert_eq!(del(&deleted).await.status, 204);
    assert!(!result_kept(&app, &other).await);
    assert_error(&app.get(&format!("/v1/jobs/{deleted}"), &bank).await, 404, "NOT_FOUND");
    // Six days on, kept; eight days on, the upkeep deletes the outputs.
    let upkeep = workers::Upkeep::new(app.store.clone(), workers::UpkeepConfig::default());
    app.advance(6 * 86_400);
    upkeep.run_until_idle().await.unwrap();
    assert_eq!(app.get(&format!("/v1/jobs/{kept}/result"), &bank).await.status, 200);
    app.advance(2 * 86_400);
    upkeep.run_until_idle().await.unwrap();
    assert!(!result_kept(&app, &kept_job).await, "the answers are gone from the disk (or the database)");
    let r = app.get(&format!("/v1/jobs/{kept}/result"), &bank).await;
    assert_error(&r, 410, "GONE");
    assert_error(&app.get(&format!("/v1/jobs/{kept}/rejections"), &bank).await, 410, "GONE");
    let job = app.get(&format!("/v1/jobs/{kept}"), &bank).await.body;
    assert!(job["outputsDeletedAt"].is_string() && job.get("result").is_none(), "{job}");
    assert_eq!((job["accepted"].as_u64(), job["rejected"].as_u64()), (Some(1), Some(1)), "the counts stay");
    assert_eq!(app.store.verify_audit().await.unwrap().first_broken, None);
}
