//! `numlink upload` and `numlink check-file`: stream a lifecycle, binding or check file to the server
//! with a progress bar, follow the job to its end, and print the summary; a check file's answers are
//! then downloaded to a file. Exits non-zero if the file was rejected as a whole.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// How often the job is asked for: a cheap read, and a check file's result is fetched at most this
/// long after it is ready.
const POLL: Duration = Duration::from_millis(100);

/// Uploads a check file, waits for its answers, and writes them to `out` (`phone_number,date,answer`).
pub async fn check_file(file: &Path, server: &str, key: &str, out: &Path) -> Result<ExitCode> {
    let (code, job) = upload_and_follow(file, "/v1/check-files", server, key).await?;
    let Some(job) = job.filter(|_| code == ExitCode::SUCCESS) else { return Ok(code) };
    let server = server.trim_end_matches('/');
    let resp = reqwest::Client::new()
        .get(format!("{server}/v1/jobs/{}/result", job["id"].as_str().unwrap_or_default()))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    if !resp.status().is_success() {
        eprintln!("the result could not be downloaded: {}", resp.status());
        println!("{}", resp.text().await.unwrap_or_default());
        return Ok(ExitCode::FAILURE);
    }
    let bar = ProgressBar::new(resp.content_length().unwrap_or(0)).with_style(
        ProgressStyle::with_template("downloading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template"),
    );
    // Written beside the target and renamed when whole: an interrupted download leaves no half result.
    let partial = out.with_extension("part");
    let mut f = tokio::fs::File::create(&partial).await.with_context(|| format!("creating {}", partial.display()))?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("downloading the result")?;
        tokio::io::AsyncWriteExt::write_all(&mut f, &chunk)
            .await
            .with_context(|| format!("writing {}", partial.display()))?;
        bar.inc(chunk.len() as u64);
    }
    tokio::io::AsyncWriteExt::flush(&mut f).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&partial, out).await.with_context(|| format!("writing {}", out.display()))?;
    bar.finish_and_clear();
    eprintln!("answers written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn run(file: &Path, kind: &str, server: &str, key: &str) -> Result<ExitCode> {
    let path = if kind == "bindings" { "/v1/binding-files" } else { "/v1/lifecycle-files" };
    Ok(upload_and_follow(file, path, server, key).await?.0)
}

/// Uploads `file` to `path`, follows the job, prints it; the exit code and the finished job.
async fn upload_and_follow(file: &Path, path: &str, server: &str, key: &str) -> Result<(ExitCode, Option<Value>)> {
    let server = server.trim_end_matches('/');
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
    let client = reqwest::Client::new();
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
        return Ok((ExitCode::FAILURE, None));
    }
    let Some(job_id) = body.get("jobId").and_then(Value::as_str) else {
        bail!("the server answered {status} without a jobId: {body}");
    };
    eprintln!("uploaded {} bytes; job {job_id}", size);
    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    let job = loop {
        let resp = client.get(format!("{server}/v1/jobs/{job_id}")).bearer_auth(key).send().await?;
        let job: Value = resp.json().await?;
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
    println!("{job}");
    if job["state"] == "failed" {
        eprintln!("the job failed: {}", job["error"]);
        return Ok((ExitCode::FAILURE, Some(job)));
    }
    if job["rejected"].as_u64().unwrap_or(0) > 0 {
        eprintln!(
            "some rows were rejected: GET {server}/v1/jobs/{job_id}/rejections lists them with their line numbers"
        );
    }
    Ok((ExitCode::SUCCESS, Some(job)))
}
