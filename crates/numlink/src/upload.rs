//! `numlink upload` and `numlink check-file`: stream a lifecycle, binding or check file to the server
//! with a progress bar, follow the job to its end, and print the summary; a check file's answers are
//! downloaded to a file while the server works. Exits non-zero if the file was rejected as a whole, the
//! job failed, or the answers could not be downloaded.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// How often a lifecycle or binding file's job is asked for (a cheap read).
const POLL: Duration = Duration::from_millis(100);
/// Bytes of the answers gathered per write to the result file.
const WRITE_BYTES: usize = 1024 * 1024;

/// Uploads a check file and downloads its answers to `out` (`phone_number,date,answer`) as the
/// server commits them, while it works through the file; prints the finished job. `out` appears only
/// whole: the answers go to `<out>.part`, which is made durable and renamed once the job has succeeded.
pub async fn check_file(file: &Path, server: &str, key: &str, out: &Path) -> Result<ExitCode> {
    let server = server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let Some(job_id) = upload(&client, file, "/v1/check-files", server, key).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let result = |follow: bool| {
        let url = format!("{server}/v1/jobs/{job_id}/result{}", if follow { "?follow=true" } else { "" });
        let req = client.get(url).bearer_auth(key);
        async move { req.send().await.with_context(|| format!("cannot reach {server}")) }
    };
    let mut resp = result(true).await?;
    if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
        // This key follows as many results as the server allows at once: wait for the job's end
        // instead, then fetch the whole result.
        eprintln!("{}; waiting for the job to end", resp.text().await.unwrap_or_default());
        let job = follow_job(&client, server, key, &job_id).await?;
        if job["state"] == "failed" {
            return report(&job, server).map(|_| ExitCode::FAILURE);
        }
        resp = result(false).await?;
    }
    if !resp.status().is_success() {
        eprintln!("the answers could not be downloaded: {}", resp.status());
        println!("{}", resp.text().await.unwrap_or_default());
        return Ok(ExitCode::FAILURE);
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} answers: {bytes} {bytes_per_sec}").expect("a valid template"),
    );
    let partial = {
        let mut name = out.as_os_str().to_owned();
        name.push(".part");
        std::path::PathBuf::from(name)
    };
    // Written a mebibyte at a time (the body arrives in pieces of a few kilobytes; each write of
    // tokio's file is a hand-over to a blocking thread).
    let mut f = tokio::io::BufWriter::with_capacity(
        WRITE_BYTES,
        tokio::fs::File::create(&partial).await.with_context(|| format!("creating {}", partial.display()))?,
    );
    let mut body = resp.bytes_stream();
    let mut cut = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                tokio::io::AsyncWriteExt::write_all(&mut f, &chunk)
                    .await
                    .with_context(|| format!("writing {}", partial.display()))?;
                bar.inc(chunk.len() as u64);
            }
            Err(e) => {
                cut = Some(e);
                break;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(e) = cut {
        drop(f);
        let _ = tokio::fs::remove_file(&partial).await;
        eprintln!("the download of the answers was cut off ({e}); no answers were written");
        match job(&client, server, key, &job_id).await {
            Ok(job) if job["state"] == "failed" => {
                report(&job, server)?;
            }
            _ => eprintln!(
                "if the job goes on, GET {server}/v1/jobs/{job_id}/result fetches its answers once it has succeeded"
            ),
        }
        return Ok(ExitCode::FAILURE);
    }
    tokio::io::AsyncWriteExt::flush(&mut f).await.with_context(|| format!("writing {}", partial.display()))?;
    f.get_ref().sync_all().await?;
    drop(f);
    // The followed result ends only once the job has succeeded.
    let job = job(&client, server, key, &job_id).await?;
    let code = report(&job, server)?;
    if code != ExitCode::SUCCESS {
        let _ = tokio::fs::remove_file(&partial).await;
        return Ok(code);
    }
    tokio::fs::rename(&partial, out).await.with_context(|| format!("writing {}", out.display()))?;
    eprintln!("answers written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Uploads a lifecycle or binding file, follows its job to its end, and prints it.
pub async fn run(file: &Path, kind: &str, server: &str, key: &str) -> Result<ExitCode> {
    let path = if kind == "bindings" { "/v1/binding-files" } else { "/v1/lifecycle-files" };
    let server = server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let Some(job_id) = upload(&client, file, path, server, key).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let job = follow_job(&client, server, key, &job_id).await?;
    report(&job, server)
}

/// Asks for the job until it has succeeded or failed, showing its progress; the finished job.
async fn follow_job(client: &reqwest::Client, server: &str, key: &str, job_id: &str) -> Result<Value> {
    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    let job = loop {
        let job = job(client, server, key, job_id).await?;
        let state = job.get("state").and_then(Value::as_str).unwrap_or("?").to_string();
        spinner.set_message(format!(
            "{state}: {} rows read, {} accepted, {} duplicates, {} rejected",
            job["rowsRead"], job["accepted"], job["duplicates"], job["rejected"]
        ));
        spinner.tick();
        if state == "succeeded" || state == "failed" {
            break job;
        }
        tokio::time::sleep(POLL).await;
    };
    spinner.finish_and_clear();
    Ok(job)
}

async fn job(client: &reqwest::Client, server: &str, key: &str, job_id: &str) -> Result<Value> {
    let resp = client.get(format!("{server}/v1/jobs/{job_id}")).bearer_auth(key).send().await?;
    Ok(resp.json().await?)
}

/// Prints a finished job; a failed job is a failure.
fn report(job: &Value, server: &str) -> Result<ExitCode> {
    println!("{job}");
    if job["state"] == "failed" {
        eprintln!("the job failed: {}", job["error"]);
        return Ok(ExitCode::FAILURE);
    }
    if job["rejected"].as_u64().unwrap_or(0) > 0 {
        eprintln!(
            "some rows were rejected: GET {server}/v1/jobs/{}/rejections lists them with their line numbers",
            job["id"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams `file` to `path` with a progress bar; the job's id, or `None` if the file was rejected as
/// a whole (printed).
async fn upload(client: &reqwest::Client, file: &Path, path: &str, server: &str, key: &str) -> Result<Option<String>> {
    let size = tokio::fs::metadata(file).await.with_context(|| format!("reading {}", file.display()))?.len();
    let f = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("uploading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template"),
    );
    let upload_bar = bar.clone();
    let chunks = futures_util::stream::unfold(f, move |mut f| {
        let bar = upload_bar.clone();
        async move {
            let mut buf = vec![0u8; 256 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    bar.inc(n as u64);
                    Some((Ok::<_, std::io::Error>(buf), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        }
    });
    let resp = client
        .post(format!("{server}{path}"))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(chunks.boxed()))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    bar.finish_and_clear();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        eprintln!("the file was rejected: {status}");
        println!("{body}");
        return Ok(None);
    }
    let Some(job_id) = body.get("jobId").and_then(Value::as_str) else {
        bail!("the server answered {status} without a jobId: {body}");
    };
    eprintln!("uploaded {size} bytes; job {job_id}");
    Ok(Some(job_id.to_string()))
}
