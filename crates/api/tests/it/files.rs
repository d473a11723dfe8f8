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
    the_order_of_a_files_rows_changes_no_outcome,
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

/// The rows of a lifecycle file that make order matter: several events of each of 40 numbers on
/// random days (so some come before the events they follow, and some would invalidate others), event
/// ids used again with another payload and on other numbers, rows repeated exactly, `ported_in` rows
/// that wait for their donor and a `ported_out` naming its recipient, numbers outside the carrier's
/// range, and rows that do not parse. Deterministic.
/// A recipient is written `{B}`, for carrier B's id.
fn order_sensitive_rows() -> Vec<String> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let kinds = ["activated", "disconnected", "transferred", "activated", "disconnected", "ported_in", "ported_out"];
    let mut rows: Vec<String> = Vec::new();
    for i in 0..320u64 {
        let number = match next(20) {
            0 => format!("+8613900000{:03}", next(5)),
            _ => format!("+8613800000{:03}", next(40)),
        };
        let kind = kinds[next(kinds.len() as u64) as usize];
        let date = format!("20{:02}-{:02}-{:02}", 20 + next(6), 1 + next(12), 1 + next(28));
        let to = if kind == "ported_out" && next(2) == 0 { "{B}" } else { "" };
        let row = match next(25) {
            // An event id used before, here with what another row says.
            0 | 1 if i > 0 => format!("e{},{number},{kind},{date},{to}", next(i)),
            // A row that does not parse.
            2 => format!("e{i},+86x{i},{kind},{date},"),
            3 => format!("e{i},{number},{kind},2024-13-{:02},", 1 + next(28)),
            4 => format!("e{i},{number},renumbered,{date},"),
            // Exactly a row before.
            5 if i > 0 => rows[next(rows.len() as u64) as usize].clone(),
            _ => format!("e{i},{number},{kind},{date},{to}"),
        };
        rows.push(row);
    }
    rows
}

/// What applying a file left, compared across orders: the job's counts, each rejection by the row
/// it rejected (its line moves with it), and per number its stored events and its answers, which the
/// index must give as the tables do. Participants' ids, which each registry issues anew, are written
/// as `{A}` and `{B}`.
async fn outcome_of(
    app: &TestApp,
    key: &str,
    ids: [&str; 2],
    rows: &[String],
) -> (Vec<Option<u64>>, Vec<String>, Vec<String>) {
    let named = |s: &str| s.replace(ids[0], "{A}").replace(ids[1], "{B}");
    let csv = format!("event_id,phone_number,type,date,recipient\n{}\n", rows.join("\n")).replace("{B}", ids[1]);
    let r = app.upload(key, &csv).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["jobId"].as_str().unwrap().to_string();
    // Stopped after three chunks and restarted: the rest is sorted again and resumes where the
    // committed rows of that order end.
    assert!(app.runner.run_chunks(3).await.unwrap());
    let mid = app.get(&format!("/v1/jobs/{id}"), key).await.body;
    assert_eq!((mid["state"].as_str(), mid["rowsTotal"].as_u64()), (Some("running"), Some(rows.len() as u64)), "{mid}");
    app.runner.run_until_idle().await.unwrap();
    let job = app.get(&format!("/v1/jobs/{id}"), key).await.body;
    assert_eq!(job["state"], "succeeded", "{job}");
    let counts = ["rowsRead", "accepted", "duplicates", "pending", "rejected"].map(|k| job[k].as_u64()).to_vec();
    let text = app.get(&format!("/v1/jobs/{id}/rejections"), key).await.text;
    let mut rejected: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let (line, rest) = l.split_once(',').unwrap();
            format!("{} => {}", rows[line.parse::<usize>().unwrap() - 2], named(rest))
        })
        .collect();
    rejected.sort();
    let mut numbers: Vec<&str> = rows.iter().filter_map(|r| r.split(',').nth(1)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut state = Vec::new();
    let dates = ["2019-01-01", "2021-06-30", "2023-03-15", "2025-12-31"].map(|d| domain::Day::parse(d).unwrap());
    for n in numbers.iter().filter_map(|n| domain::PhoneNumber::parse(n).ok()) {
        let events = app.store.events_of(n).await.unwrap();
        let questions: Vec<_> = dates.iter().map(|&d| (n, d)).collect();
        let tables = app.store.check_from_tables(questions.clone()).await.unwrap();
        let index = app.store.answer_many(&questions);
        assert_eq!(format!("{index:?}"), format!("{tables:?}"), "{n}: the index answers as the tables do");
        state.push(named(&format!("{n}: {events:?} {tables:?}")));
    }
    (counts, rejected, state)
}

/// A lifecycle file is applied in number order whatever order its rows came in: the same rows sorted
/// by number, reversed and shuffled give the same counts, rejections, histories and answers. Each is
/// applied into a fresh registry, sorted in runs of a few kilobytes (so the merge reads run files)
/// and small chunks, and stopped and restarted partway.
async fn the_order_of_a_files_rows_changes_no_outcome(db: TestDb) {
    let mut limits = Limits::default();
    limits.files.chunk_rows = 16;
    limits.files.sort_bytes = 2048;
    let backend = db.backend;
    let mut dbs = vec![db, TestDb::get(backend).unwrap(), TestDb::get(backend).unwrap()];
    let mut outcomes = Vec::new();
    for order in ["sorted", "reversed", "shuffled"] {
        let app = TestApp::with_limits(dbs.remove(0), limits);
        let (a, key) = app.participant(store::Role::Carrier, "Carrier A", &["+86138"]).await;
        let (b, _) = app.participant(store::Role::Carrier, "Carrier B", &["+86139"]).await;
        let mut rows = order_sensitive_rows();
        match order {
            "sorted" => rows.sort_by(|a, b| a.split(',').nth(1).cmp(&b.split(',').nth(1))),
            "reversed" => rows.reverse(),
            _ => {
                let mut seed = 7u64;
                for i in (1..rows.len()).rev() {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    rows.swap(i, (seed >> 33) as usize % (i + 1));
                }
            }
        }
        let app = app.restart();
        outcomes.push((order, outcome_of(&app, &key, [a.id.as_str(), b.id.as_str()], &rows).await));
    }
    let (_, (counts, rejected, _)) = &outcomes[0];
    // The file has what makes order matter, or this test proves nothing.
    let [_, accepted, duplicates, pending, _] = counts[..] else { unreachable!() };
    assert!(accepted > Some(40) && duplicates > Some(0) && pending > Some(0), "{counts:?}");
    for code in ["INVALID_ARGUMENT", "NOT_NUMBER_HOLDER", "CONFLICT", "STATE_CONFLICT"] {
        assert!(rejected.iter().any(|r| r.contains(&format!("=> {code},"))), "no {code} in {rejected:#?}");
    }
    for (order, outcome) in &outcomes[1..] {
        assert_eq!(outcome.0, outcomes[0].1.0, "{order}: counts");
        assert_eq!(outcome.1, outcomes[0].1.1, "{order}: rejections");
        assert_eq!(outcome.2, outcomes[0].1.2, "{order}: histories and answers");
    }
}
