//! The holder's side (R5): prove possession of a number with a one-time code, see which institutions
//! hold bindings made before the tenure, ask them to unbind, follow the requests, see who looked the
//! number up, and take a signed proof of tenure. Public endpoints: a holder has no API key, only the
//! session token a code buys.

use axum::Json;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::UnbindRequest;
use utoipa::ToSchema;

use crate::admit::ClientAddr;
use crate::error::{ApiError, ApiResult, ErrorInfo};
use crate::holder::{self, Holder};
use crate::json::StrictJson;
use crate::routes::phone;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OtpRequest {
    #[schema(example = "+8613800138000")]
    pub phone_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtpChallenge {
    /// Send it back with the code.
    pub challenge_id: String,
    pub expires_in_seconds: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionRequest {
    #[schema(example = "+8613800138000")]
    pub phone_number: String,
    pub challenge_id: String,
    /// The six digits received by SMS.
    #[schema(example = "123456")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HolderSession {
    /// `nlh_…`: send as `Authorization: Bearer <token>` to the holder endpoints. Scoped to this number.
    pub token: String,
    pub phone_number: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An unbind request as the holder sees it: the institution and the state, nothing about the accounts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HolderUnbindRequest {
    pub id: String,
    pub institution_id: String,
    pub institution_name: String,
    /// `open`, `unbound` or `rejected`.
    pub state: String,
    /// Open past its deadline.
    pub overdue: bool,
    /// The day by which the institution is to answer.
    pub deadline: String,
    /// Why it was rejected: `customer_reverified`, `legal_hold`, `fraud_investigation`, `no_such_binding`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

impl HolderUnbindRequest {
    fn new(r: UnbindRequest, today: domain::Day) -> HolderUnbindRequest {
        HolderUnbindRequest {
            overdue: r.overdue(today),
            id: r.id.into(),
            institution_id: r.institution_id,
            institution_name: r.institution_name,
            state: r.state.as_str().into(),
            deadline: r.deadline.to_string(),
            reason: r.reason.map(|x| x.as_str().into()),
            created_at: r.created_at,
            resolved_at: r.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaleInstitution {
    pub institution_id: String,
    /// The institution's display name.
    pub name: String,
    /// Its bindings on this number made before your tenure began (0 once unbound).
    pub bindings: u32,
    /// Your latest request to it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbind_request: Option<HolderUnbindRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HolderBindings {
    pub phone_number: String,
    pub institutions: Vec<StaleInstitution>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnbindBody {
    /// The institutions to ask (ids from `GET /v1/holder/bindings`), at most 100; or `all`.
    pub institution_ids: Option<Vec<String>>,
    /// Ask every institution holding a binding made before your tenure.
    pub all: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HolderUnbindRequests {
    pub requests: Vec<HolderUnbindRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupView {
    pub institution_name: String,
    pub at: String,
    /// `check` (has the number changed hands) or `kyc_match` (real-name match).
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Lookups {
    /// Newest first, at most 1,000.
    pub lookups: Vec<LookupView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationView {
    /// A compact JWS (EdDSA, Ed25519); verify it against `/.well-known/jwks.json`.
    pub attestation: String,
    /// The `held_since` claim: the number has been yours since this day or earlier.
    pub held_since: String,
    /// Unix seconds.
    pub expires_at: i64,
}

crate::redacted_debug!(SessionRequest, HolderSession);

#[utoipa::path(
    post,
    path = "/v1/holder/otp",
    tag = "Holder",
    summary = "Send a one-time code to a number",
    description = "Sends a 6-digit code, valid 10 minutes, by SMS through the carrier that serves the number now. The \
                   answer is the same whether or not the number has a holder or bindings. Each client address (an \
                   IPv4 address, or an IPv6 /64) may have at most 5 codes sent to one number per hour and 10 per day, \
                   and 20 codes an hour to any numbers; a number receives at most 30 a day in all. A number in no \
                   carrier's range is answered 422 (ranges are public numbering-plan facts).",
    request_body = OtpRequest,
    responses(
        (status = 201, description = "A challenge; the code is on its way", body = OtpChallenge),
        (status = 400, description = "INVALID_ARGUMENT", body = ErrorInfo),
        (status = 422, description = "SERVICE_NOT_APPLICABLE: no carrier's range in numlink holds the number", body = ErrorInfo),
        (status = 429, description = "TOO_MANY_REQUESTS: send limit of the number or of the client address, or the number is locked (see Retry-After)", body = ErrorInfo),
    )
)]
pub async fn request_otp(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    StrictJson(req): StrictJson<OtpRequest>,
) -> ApiResult<(StatusCode, Json<OtpChallenge>)> {
    let client_ip = client.map(|Extension(ClientAddr(ip))| ip);
    holder::client_allowed(&state, client_ip).await?;
    let n = phone("phoneNumber", &req.phone_number)?;
    let sent = holder::send_code(&state, client_ip, n).await?;
    Ok((
        StatusCode::CREATED,
        Json(OtpChallenge { challenge_id: sent.challenge_id.into(), expires_in_seconds: sent.expires_in_secs }),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/holder/session",
    tag = "Holder",
    summary = "Trade a code for a holder session",
    description = "A correct code gives a token for this number, valid 15 minutes. Each challenge takes 5 wrong \
                   codes; 100 wrong codes in a row lock the number for a day.",
    request_body = SessionRequest,
    responses(
        (status = 201, description = "The session", body = HolderSession),
        (status = 400, description = "INVALID_ARGUMENT, OTP_VERIFICATION_FAILED (wrong code), OTP_VERIFICATION_EXPIRED \
                                      (expired, used, or out of guesses: ask for a new code)", body = ErrorInfo),
        (status = 429, description = "TOO_MANY_REQUESTS: the number is locked (see Retry-After)", body = ErrorInfo),
    )
)]
pub async fn session(
    State(state): State<AppState>,
    StrictJson(req): StrictJson<SessionRequest>,
) -> ApiResult<(StatusCode, Json<HolderSession>)> {
    let n = phone("phoneNumber", &req.phone_number)?;
    let s = holder::sign_in(&state, n, &req.challenge_id, &req.code).await?;
    Ok((
        StatusCode::CREATED,
        Json(HolderSession { token: s.token, phone_number: s.number.to_string(), expires_at: s.expires_at }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/holder/bindings",
    tag = "Holder",
    summary = "Institutions holding bindings made before your tenure",
    description = "R5: only bindings made before your tenure began; never an account reference, never anything about \
                   the previous holder. Institutions you asked stay listed with the state of your request.",
    responses(
        (status = 200, body = HolderBindings),
        (status = 401, description = "UNAUTHENTICATED: no or expired holder token", body = ErrorInfo),
    ),
    security(("holderToken" = []))
)]
pub async fn bindings(State(state): State<AppState>, h: Holder) -> ApiResult<Json<HolderBindings>> {
    let (stale, today) = holder::institutions(&state, h).await?;
    let institutions = stale
        .into_iter()
        .map(|i| StaleInstitution {
            institution_id: i.institution_id,
            name: i.institution_name,
            bindings: i.bindings,
            unbind_request: i.request.map(|r| HolderUnbindRequest::new(r, today)),
        })
        .collect();
    Ok(Json(HolderBindings { phone_number: h.0.to_string(), institutions }))
}

#[utoipa::path(
    post,
    path = "/v1/holder/unbind-requests",
    tag = "Holder",
    summary = "Ask institutions to unbind",
    description = "One request per institution (those named, or all) holding bindings made before your tenure. Each is \
                   notified (`unbind.requested`, webhook and feed) with the request id and your signed proof of tenure, \
                   and has until the deadline (5 working days by default) to answer. Asking again while a request is \
                   open returns that request.",
    request_body = UnbindBody,
    responses(
        (status = 201, description = "The requests", body = HolderUnbindRequests),
        (status = 400, description = "INVALID_ARGUMENT: neither or both of institutionIds and all, or too many ids", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: a named institution holds no binding made before your tenure", body = ErrorInfo),
    ),
    security(("holderToken" = []))
)]
pub async fn request_unbind(
    State(state): State<AppState>,
    h: Holder,
    StrictJson(body): StrictJson<UnbindBody>,
) -> ApiResult<(StatusCode, Json<HolderUnbindRequests>)> {
    let named = match (body.institution_ids, body.all) {
        (Some(ids), None | Some(false)) if !ids.is_empty() => Some(ids),
        (None, Some(true)) => None,
        _ => return Err(ApiError::invalid("send either \"institutionIds\" (a non-empty list) or \"all\": true")),
    };
    let asked = holder::ask_unbind(&state, h, named).await?;
    let requests = asked.requests.into_iter().map(|r| HolderUnbindRequest::new(r, asked.today)).collect();
    Ok((StatusCode::CREATED, Json(HolderUnbindRequests { requests })))
}

#[utoipa::path(
    get,
    path = "/v1/holder/unbind-requests",
    tag = "Holder",
    summary = "Your unbind requests and their state",
    responses((status = 200, body = HolderUnbindRequests), (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo)),
    security(("holderToken" = []))
)]
pub async fn unbind_requests(State(state): State<AppState>, h: Holder) -> ApiResult<Json<HolderUnbindRequests>> {
    let (requests, today) = holder::requests(&state, h).await?;
    let requests = requests.into_iter().map(|r| HolderUnbindRequest::new(r, today)).collect();
    Ok(Json(HolderUnbindRequests { requests }))
}

#[utoipa::path(
    get,
    path = "/v1/holder/lookups",
    tag = "Holder",
    summary = "Which institutions looked your number up",
    description = "Checks and real-name matches of this number over the last 180 days, from the audit log; none from \
                   before your tenure began.",
    responses((status = 200, body = Lookups), (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo)),
    security(("holderToken" = []))
)]
pub async fn lookups(State(state): State<AppState>, h: Holder) -> ApiResult<Json<Lookups>> {
    let lookups = holder::lookups(&state, h)
        .await?
        .into_iter()
        .map(|l| LookupView { kind: lookup_kind(&l.action).into(), institution_name: l.institution_name, at: l.at })
        .collect();
    Ok(Json(Lookups { lookups }))
}

/// The kind of a lookup as the holder's side names it: `check` or `kyc_match`.
pub fn lookup_kind(action: &str) -> &str {
    if action == "kyc.match" { "kyc_match" } else { action }
}

#[utoipa::path(
    get,
    path = "/v1/holder/attestation",
    tag = "Holder",
    summary = "A signed proof of tenure",
    description = "A compact JWS (EdDSA over Ed25519) stating the number, that it has been yours since a day no earlier \
                   than the start of your tenure (rounded up to a first of the month), the issuer, issue and expiry \
                   times, and an id. Any institution verifies it offline against `/.well-known/jwks.json` \
                   (`numlink attestation verify`).",
    responses(
        (status = 200, body = AttestationView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: nobody holds the number now", body = ErrorInfo),
    ),
    security(("holderToken" = []))
)]
pub async fn attestation(State(state): State<AppState>, h: Holder) -> ApiResult<Json<AttestationView>> {
    let p = holder::proof(&state, h).await?;
    Ok(Json(AttestationView { attestation: p.token, held_since: p.held_since.to_string(), expires_at: p.expires_at }))
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "Holder",
    summary = "The keys that sign proofs of tenure",
    description = "A JWK Set of Ed25519 keys (`kty` OKP). A rotated-out key stays here until every token it signed has expired.",
    responses((status = 200, description = "The JWK Set", body = Object))
)]
pub async fn jwks(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(crate::attest::jwks(&state.store.attestation_keys().await?)))
}
