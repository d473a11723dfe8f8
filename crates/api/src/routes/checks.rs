//! `POST /v1/reassignment-checks`: up to `batch_items_max` (number, date) items answered with the
//! tri-state answer, in order; an invalid item gets an error in its place and fails nothing else.

use std::borrow::Cow;

use axum::extract::State;
use axum::response::IntoResponse;
use domain::Answer;
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::{self, JsonBody};
use crate::routes::{date, phone};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignmentCheckRequest<'a> {
    /// At most 1,000 items (batch_items_max).
    #[serde(borrow)]
    pub items: Vec<CheckItem<'a>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckItem<'a> {
    // Borrowed from the body unless they hold escapes.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    #[schema(value_type = Option<String>, example = "+8613800138000")]
    pub phone_number: Option<Cow<'a, str>>,
    /// `YYYY-MM-DD`: has the number changed hands on or after this day?
    #[serde(borrow, default, deserialize_with = "borrowed")]
    #[schema(value_type = Option<String>, example = "2024-10-31")]
    pub date: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the body when it holds no escapes. (`#[serde(borrow)]` borrows a
/// `Cow<str>` field, but not one inside an `Option`: that one is always copied.)
fn borrowed<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReassignmentCheckResponse<'a> {
    /// One result per item, in the order of the request.
    pub results: Vec<CheckResult<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult<'a> {
    #[schema(value_type = Option<String>)]
    pub phone_number: Option<Cow<'a, str>>,
    #[schema(value_type = Option<String>)]
    pub date: Option<Cow<'a, str>>,
    /// `yes`: changed hands on or after the date; `no`: same holder; `no_data`: numlink cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "yes")]
    pub answer: Option<&'static str>,
    /// In place of an answer, for an invalid item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    pub code: String,
    pub message: String,
}

impl From<ApiError> for ItemError {
    fn from(e: ApiError) -> Self {
        ItemError { code: e.code.as_str().to_string(), message: e.message }
    }
}

#[utoipa::path(
    post,
    path = "/v1/reassignment-checks",
    tag = "Checks",
    summary = "Has each number changed hands since its date? (RND style, batched)",
    request_body = ReassignmentCheckRequest,
    responses(
        (status = 200, description = "One result per item, in order", body = ReassignmentCheckResponse),
        (status = 400, description = "INVALID_ARGUMENT (malformed body) or TOO_MANY_ITEMS", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions and regulators", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn reassignment_checks(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<axum::response::Response> {
    // (The response is `ReassignmentCheckResponse`, written by `write_response`.)
    let req: ReassignmentCheckRequest<'_> = json::parse(&body.bytes, body.is_json)?;
    let who = caller.require(&[Role::Institution, Role::Regulator])?.clone();
    let max = state.limits.batch_items_max;
    if req.items.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} items: at most {max} per call (batch_items_max)", req.items.len()),
        ));
    }
    let parsed: Vec<Result<_, ApiError>> = req
        .items
        .iter()
        .map(|it| {
            let n = phone(
                "phoneNumber",
                it.phone_number.as_deref().ok_or_else(|| ApiError::invalid("phoneNumber is required"))?,
            )?;
            let d = date("date", it.date.as_deref().ok_or_else(|| ApiError::invalid("date is required"))?)?;
            Ok((n, d))
        })
        .collect();
    let valid: Vec<_> = parsed.iter().filter_map(|p| p.as_ref().ok().copied()).collect();
    let mut answers = state.store.check(who, valid).await?.into_iter();
    // Counted per call, not per item: a metrics key lookup costs as much as an answer.
    let mut counts = [0u64; 3];
    let results: Vec<CheckResult> = req
        .items
        .into_iter()
        .zip(parsed)
        .map(|(item, p)| {
            let outcome = p.and_then(|(_, d)| match answers.next() {
                Some(Ok(a)) => Ok(a),
                Some(Err(_)) => Err(ApiError::new(ErrorCode::OutOfRange, format!("date \"{d}\" is in the future"))),
                None => Err(ApiError::internal("fewer answers than items")),
            });
            if let Ok(a) = &outcome {
                counts[match a {
                    Answer::Yes => 0,
                    Answer::No => 1,
                    Answer::NoData(_) => 2,
                }] += 1;
            }
            let (answer, error) = match outcome {
                Ok(a) => (Some(Answer::as_str(a)), None),
                Err(e) => (None, Some(e.into())),
            };
            CheckResult { phone_number: item.phone_number, date: item.date, answer, error }
        })
        .collect();
    for (i, answer) in ["yes", "no", "no_data"].into_iter().enumerate() {
        if counts[i] > 0 {
            metrics::counter!("numlink_checks_total", "api" => "batch", "answer" => answer).increment(counts[i]);
        }
    }
    let body = write_response(&ReassignmentCheckResponse { results });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The response as `serde_json` writes it, without its per-field machinery: a thousand results per
/// call. Strings borrowed from the request hold no escapes (the parser borrows only those), so they are
/// written as they are; anything else goes through `serde_json`.
fn write_response(r: &ReassignmentCheckResponse<'_>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: Option<&Cow<'_, str>>) {
        match s {
            Some(Cow::Borrowed(s)) if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            Some(s) => serde_json::to_writer(&mut *out, s.as_ref()).expect("a string serializes"),
            None => out.extend_from_slice(b"null"),
        }
    }
    let mut out = Vec::with_capacity(16 + r.results.len() * 72);
    out.extend_from_slice(b"{\"results\":[");
    for (i, c) in r.results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"phoneNumber\":");
        string(&mut out, c.phone_number.as_ref());
        out.extend_from_slice(b",\"date\":");
        string(&mut out, c.date.as_ref());
        if let Some(a) = c.answer {
            out.extend_from_slice(b",\"answer\":\"");
            out.extend_from_slice(a.as_bytes());
            out.push(b'"');
        }
        if let Some(e) = &c.error {
            out.extend_from_slice(b",\"error\":");
            serde_json::to_writer(&mut out, e).expect("an error serializes");
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_is_written_as_serde_json_writes_it() {
        let body = br#"{"items":[{"phoneNumber":"+8613800138000","date":"2024-01-01"},{"phoneNumber":"+86\u0031\"x","date":null},{"date":"a\\b"},{"phoneNumber":"\n"}]}"#;
        let bytes = axum::body::Bytes::from_static(body);
        let req: ReassignmentCheckRequest<'_> = json::parse(&bytes, true).unwrap();
        // Strings without escapes are borrowed from the body, the others copied.
        assert!(matches!(req.items[0].phone_number, Some(Cow::Borrowed("+8613800138000"))));
        assert!(matches!(req.items[0].date, Some(Cow::Borrowed("2024-01-01"))));
        assert!(matches!(req.items[1].phone_number, Some(Cow::Owned(_))));
        assert!(req.items[1].date.is_none() && req.items[2].phone_number.is_none());
        let results: Vec<CheckResult<'_>> = req
            .items
            .into_iter()
            .enumerate()
            .map(|(i, it)| CheckResult {
                phone_number: it.phone_number,
                date: it.date,
                answer: (i % 2 == 0).then_some("yes"),
                error: (i % 2 == 1).then(|| ItemError { code: "INVALID_ARGUMENT".into(), message: "\"bad\"\n".into() }),
            })
            .collect();
        let r = ReassignmentCheckResponse { results };
        assert_eq!(String::from_utf8(write_response(&r)).unwrap(), serde_json::to_string(&r).unwrap());
        let empty = ReassignmentCheckResponse { results: vec![] };
        assert_eq!(String::from_utf8(write_response(&empty)).unwrap(), serde_json::to_string(&empty).unwrap());
    }
}
