//! Unbind requests, the institution's side: list them, read one with the bindings it is about, and
//! answer it. `unbound` removes the institution's bindings on the number made before the holder's
//! tenure; `rejected` needs a reason from a fixed list.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use store::UnbindRequest;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorInfo};
use crate::json::{StrictJson, StrictQuery};
use crate::routes::bindings::{PageQuery, page_limit};
use crate::state::AppState;
use crate::unbind;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestedBindingView {
    pub binding_id: String,
    pub account_ref: String,
    pub bound_on: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnbindRequestView {
    pub id: String,
    /// `open`, `unbound` or `rejected`.
    pub state: String,
    /// Open past its deadline.
    pub overdue: bool,
    pub deadline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The id of the holder's proof of tenure sent with the request.
    pub attestation_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// Your bindings on the number made before the holder's tenure, when the request was made.
    pub bindings: Vec<RequestedBindingView>,
}

impl UnbindRequestView {
    pub(crate) fn new(r: UnbindRequest, today: domain::Day) -> UnbindRequestView {
        UnbindRequestView {
            overdue: r.overdue(today),
            id: r.id.into(),
            state: r.state.as_str().into(),
            deadline: r.deadline.to_string(),
            reason: r.reason.map(|x| x.as_str().into()),
            attestation_id: r.attestation_id,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            bindings: r
                .bindings
                .into_iter()
                .map(|b| RequestedBindingView {
                    binding_id: b.binding_id,
                    account_ref: b.account_ref,
                    bound_on: b.bound_on.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnbindRequestsPage {
    pub requests: Vec<UnbindRequestView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `unbound` or `rejected`.
    #[schema(example = "unbound")]
    pub outcome: String,
    /// With `rejected`: `customer_reverified`, `legal_hold`, `fraud_investigation` or `no_such_binding`.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedView {
    #[serde(flatten)]
    pub request: UnbindRequestView,
    /// Bindings removed by an `unbound`.
    pub bindings_removed: u64,
}

#[utoipa::path(
    get,
    path = "/v1/unbind-requests",
    tag = "Unbind requests",
    summary = "Holders' unbind requests to you",
    params(PageQuery),
    responses((status = 200, body = UnbindRequestsPage), (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo)),
    security(("apiKey" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<PageQuery>,
) -> ApiResult<Json<UnbindRequestsPage>> {
    let limit = page_limit(&state, q.limit)?.min(1_000);
    let page = unbind::list(&state, &caller, q.after.as_deref().unwrap_or(""), limit).await?;
    let next_cursor = (page.len() == limit as usize).then(|| page.last().map(|r| r.id.to_string())).flatten();
    let today = state.store.today();
    Ok(Json(UnbindRequestsPage {
        requests: page.into_iter().map(|r| UnbindRequestView::new(r, today)).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/unbind-requests/{id}",
    tag = "Unbind requests",
    summary = "One unbind request, with the bindings it is about",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, body = UnbindRequestView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such request, or not to you", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<UnbindRequestView>> {
    let r = unbind::get(&state, &caller, &id).await?;
    Ok(Json(UnbindRequestView::new(r, state.store.today())))
}

#[utoipa::path(
    post,
    path = "/v1/unbind-requests/{id}/resolve",
    tag = "Unbind requests",
    summary = "Answer an unbind request",
    description = "`unbound` removes your bindings on the number made before the holder's tenure; `rejected` needs a \
                   reason. The first answer stands: a second is 409 CONFLICT.",
    params(("id" = String, Path, description = "The request id")),
    request_body = ResolveBody,
    responses(
        (status = 200, body = ResolvedView),
        (status = 400, description = "INVALID_ARGUMENT: unknown outcome, or a rejection without a listed reason", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND", body = ErrorInfo),
        (status = 409, description = "CONFLICT: answered before", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<ResolveBody>,
) -> ApiResult<Json<ResolvedView>> {
    let resolution = unbind::resolution(&body.outcome, body.reason.as_deref())?;
    let today = state.store.today();
    let (request, bindings_removed) = unbind::resolve(&state, &caller, &id, resolution).await?;
    Ok(Json(ResolvedView { request: UnbindRequestView::new(request, today), bindings_removed }))
}
