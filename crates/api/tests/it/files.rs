//! Lifecycle files as jobs: streamed upload, chunked application, rejections by line number,
//! idempotent re-upload, resumption after a crash, and limits.

use api::Limits;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::{TestApp, assert_error};

backend_tests!(
    a_file_is_applied_and_bad_rows_rejected_by_line,
    rnd_files_and_reuploads_apply_nothing_twice,
    whole_file_rejections,
    jobs_are_visible_to_their_owner_only,
    a_crash_midway_resumes_where_the_last_commit_left_off,
    rejections_name_their_line_whatever_ends_the_lines,
);

/// A file written on Windows (lines end in CRLF), with a blank line: each rejection names the line a
/// person sees the row on in an editor.
async fn rejections_name_their_line_whatever_ends_the_lines(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let csv = "event_id,phone_number,type,date\r\n\
               w1,+8613800000001,disconnected,2024-01-01\r\n\
               w2,+86bad,disconnected,2024-01-01\r\n\
               \r\n\
               w3,+8613800000002,reissued,2024-01-01\r\n\
               w4,+8613800000003,disconnected,2024-01-01\r\n";
    let job = app.upload_and_apply(&carrier, csv).await;
    assert_eq!((job["accepted"].as_u64(), job["rejected"].as_u64()), (Some(2), Some(2)), "{job}");
    let r = app.get(&format!("/v1/jobs/{}/rejections", job["id"].as_str().unwrap()), &carrier).await;
    let lines: Vec<&str> = r.text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(lines, ["3", "5"], "{}", r.text);
}

async fn a_file_is_applied_and_bad_rows_rejected_by_line(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let csv = "event_id,phone_number,type,date\n\
               f1,+8613800000001,disconnected,2024-01-01\n\
               f2,+86bad,disconnected,2024-01-01\n\
               f3,+8613800000001,activated,2024-02-01\n\
               \"f4\",\"+8613800000002\",\"transferred\",\"2024-01-05\"\n\
               f5,+8613900000001,disconnected,2024-01-01\n\
               f6,+8613800000003,disconnected\n\
               f7,+8613800000001,activated,2024-05-01\n\
               f8,+86138\u{0}0000009,disconnected,2024-01-01\n";
    let job = app.upload_and_apply(&carrier, csv).await;
    assert_eq!(
        (
            job["state"].as_str(),
            job["rowsRead"].as_u64(),
            job["accepted"].as_u64(),
            job["duplicates"].as_u64(),
            job["rejected"].as_u64()
        ),
        (Some("succeeded"), Some(8), Some(3), Some(0), Some(5)),
        "{job}"
    );
    let r = app.get(&format!("/v1/jobs/{}/rejections", job["id"].as_str().unwrap()), &carrier).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<(String, String)> = r
        .text
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.splitn(3, ',');
            (f.next().unwrap().to_string(), f.next().unwrap().to_string())
        })
        .collect();
    // Line 9 has a NUL byte: rejected like any bad row (and storable on PostgreSQL, which refuses NUL in text).
    let expected = [
        ("3", "INVALID_ARGUMENT"),
        ("4", "AGING_VIOLATION"),
        ("6", "NOT_NUMBER_HOLDER"),
        ("7", "INVALID_ARGUMENT"),
        ("9", "INVALID_ARGUMENT"),
    ];
    assert_eq!(lines, expected.map(|(a, b)| (a.to_string(), b.to_string())), "{}", r.text);
    assert!(r.text.starts_with("line,code,message\n"));
    // The accepted rows answer checks.
    let bank = app.institution().await;
    let r = app
        .post(
            "/v1/reassignment-checks",
            &bank,
            json!({"items": [{"phoneNumber": "+8613800000001", "date": "2023-12-01"}]}),
        )
        .await;
    assert_eq!(r.body["results"][0]["answer"], "yes");
}

async fn rnd_files_and_reuploads_apply_nothing_twice(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let csv = "phone_number,disconnect_date\r\n+8613800000001,2024-01-01\r\n+8613800000002,2024-01-02\r\n+8613800000003,2024-13-01\r\n";
    let first = app.upload_and_apply(&carrier, csv).await;
    assert_eq!(
        (first["format"].as_str(), first["accepted"].as_u64(), first["rejected"].as_u64()),
        (Some("rnd"), Some(2), Some(1)),
        "{first}"
    );
    let again = app.upload_and_apply(&carrier, csv).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64(), again["rejected"].as_u64()),
        (Some(0), Some(2), Some(1)),
        "{again}"
    );
}

async fn whole_file_rejections(db: TestDb) {
    let mut limits = Limits::default();
    limits.files.file_rows_max = 3;
    limits.files.file_bytes_max = 1000;
    let app = TestApp::with_limits(db, limits);
    let carrier = app.carrier().await;
    assert_error(&app.upload(&carrier, "").await, 400, "INVALID_ARGUMENT");
    let r = app.upload(&carrier, "number,when\n+8613800000001,2024-01-01\n").await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    assert!(r.body["message"].as_str().unwrap().contains("phone_number,disconnect_date"));
    let four = "phone_number,disconnect_date\n+8613800000001,2024-01-01\n+8613800000002,2024-01-01\n+8613800000003,2024-01-01\n+8613800000004,2024-01-01";
    let r = app.upload(&carrier, four).await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    assert!(r.body["message"].as_str().unwrap().contains("file_rows_max"));
    let r = app
        .upload(&carrier, &format!("phone_number,disconnect_date\n{}", "+8613800000001,2024-01-01\n".repeat(40)))
        .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    assert!(r.body["message"].as_str().unwrap().contains("file_bytes_max"));
    // Nothing rejected as a whole was queued or left behind.
    assert_eq!(app.store.next_job().await.unwrap(), None);
    assert_eq!(std::fs::read_dir(app.spool.path()).unwrap().count(), 0);
}

async fn jobs_are_visible_to_their_owner_only(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let other = app.participant(store::Role::Carrier, "Carrier B", &["+86139"]).await.1;
    let job = app.upload_and_apply(&carrier, "phone_number,disconnect_date\n+8613800000001,2024-01-01\n").await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/jobs/{id}"), &carrier).await.status, 200);
    assert_error(&app.get(&format!("/v1/jobs/{id}"), &other).await, 404, "NOT_FOUND");
    assert_error(&app.get(&format!("/v1/jobs/{id}/rejections"), &other).await, 404, "NOT_FOUND");
    assert_error(&app.get("/v1/jobs/job_nope", &carrier).await, 404, "NOT_FOUND");
}

async fn a_crash_midway_resumes_where_the_last_commit_left_off(db: TestDb) {
    let mut limits = Limits::default();
    limits.files.chunk_rows = 2;
    let app = TestApp::with_limits(db, limits);
    let carrier = app.carrier().await;
    let mut csv = String::from("event_id,phone_number,type,date\n");
    for i in 1..=7 {
        csv.push_str(&format!("r{i},+86138000000{i:02},disconnected,2024-01-0{i}\n"));
    }
    csv.push_str("bad,+86x,disconnected,2024-01-01\n");
    let r = app.upload(&carrier, &csv).await;
    assert_eq!(r.status, 202);
    let id = r.body["jobId"].as_str().unwrap().to_string();
    // Two chunks are committed (the third read ahead, not applied), then the process dies.
    assert!(app.runner.run_chunks(2).await.unwrap());
    let mid = app.get(&format!("/v1/jobs/{id}"), &carrier).await.body;
    assert_eq!(
        (mid["state"].as_str(), mid["rowsRead"].as_u64(), mid["accepted"].as_u64()),
        (Some("running"), Some(4), Some(4))
    );
    let app = app.restart();
    app.runner.run_until_idle().await.unwrap();
    let done = app.get(&format!("/v1/jobs/{id}"), &carrier).await.body;
    assert_eq!(
        (
            done["state"].as_str(),
            done["rowsRead"].as_u64(),
            done["accepted"].as_u64(),
            done["duplicates"].as_u64(),
            done["rejected"].as_u64()
        ),
        (Some("succeeded"), Some(8), Some(7), Some(0), Some(1)),
        "{done}"
    );
    let r = app.get(&format!("/v1/jobs/{id}/rejections"), &carrier).await;
    assert!(r.text.contains("\n9,INVALID_ARGUMENT,"), "the bad row is line 9: {}", r.text);
}
