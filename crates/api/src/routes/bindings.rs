//! Bindings: an institution registers which of its accounts are bound to which numbers, sees and
//! deletes its own (another institution's binding answers 404, as an unknown id does).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{Binding, BindingId, NewBinding, Role};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::{StrictJson, StrictQuery};
use crate::routes::checks::ItemError;
use crate::routes::{date, phone};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingsRequest {
    /// At most 1,000 (batch_items_max).
    pub bindings: Vec<BindingItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingItem {
    /// The institution's own opaque reference of the account: 1 to 128 characters.
    #[schema(example = "acct-0042")]
    pub account_ref: Option<String>,
    #[schema(example = "+8613800138000")]
    pub phone_number: Option<String>,
    /// The day the account was bound to the number (`YYYY-MM-DD`), not after today.
    #[schema(example = "2023-12-22")]
    pub bound_on: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingView {
    pub id: String,
    pub account_ref: String,
    pub bound_on: String,
    /// The holder the binding was made with no longer has the number (R2 at boundOn, or a
    /// notification since). A stale binding becomes fresh again only when it is rebound to its
    /// customer's new number (`POST /v1/bindings/{id}/rebind`).
    pub stale: bool,
    pub created_at: String,
}

impl From<Binding> for BindingView {
    fn from(b: Binding) -> Self {
        BindingView {
            id: b.id.into(),
            account_ref: b.account_ref,
            bound_on: b.bound_on.to_string(),
            stale: b.stale,
            created_at: b.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingResult {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub binding: Option<BindingView>,
    /// False when this (accountRef, phoneNumber) was registered before: the earlier binding is returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingsResponse {
    /// One result per item, in order.
    pub results: Vec<BindingResult>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingsPage {
    pub bindings: Vec<BindingView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The cursor from the previous page.
    pub after: Option<String>,
    /// Rows per page: 1 to page_rows_max, default 100.
    pub limit: Option<u32>,
}

pub(crate) fn page_limit(state: &AppState, limit: Option<u32>) -> ApiResult<u32> {
    let max = state.limits.page_rows_max;
    match limit.unwrap_or(100) {
        0 => Err(ApiError::invalid("limit must be at least 1")),
        n if n > max => {
            Err(ApiError::invalid(format!("limit {n} is over the page size limit of {max} (page_rows_max)")))
        }
        n => Ok(n),
    }
}

fn parse_binding(it: &BindingItem) -> Result<NewBinding, ApiError> {
    let need = |v: &Option<String>, f: &str| v.clone().ok_or_else(|| ApiError::invalid(format!("{f} is required")));
    let account_ref = workers::files::parse_account_ref(&need(&it.account_ref, "accountRef")?)
        .map_err(|r| ApiError::invalid(r.message))?;
    let number = phone("phoneNumber", &need(&it.phone_number, "phoneNumber")?)?;
    let bound_on = date("boundOn", &need(&it.bound_on, "boundOn")?)?;
    Ok(NewBinding { account_ref, number, bound_on })
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no binding \"{}\"", domain::number::truncate_for_message(id)))
}

#[utoipa::path(
    post,
    path = "/v1/bindings",
    tag = "Bindings",
    summary = "Register bindings of accounts to numbers",
    description = "Idempotent on (institution, accountRef, phoneNumber). A binding that is already stale when registered \
                   is notified at once. The number is stored only under a keyed hash.",
    request_body = BindingsRequest,
    responses(
        (status = 200, description = "One result per item, in order", body = BindingsResponse),
        (status = 400, description = "INVALID_ARGUMENT (malformed body) or TOO_MANY_ITEMS", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<BindingsRequest>,
) -> ApiResult<Json<BindingsResponse>> {
    let institution = institution_of(&caller)?.clone();
    let max = state.limits.batch_items_max;
    if req.bindings.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} bindings: at most {max} per call (batch_items_max)", req.bindings.len()),
        ));
    }
    let parsed: Vec<Result<NewBinding, ApiError>> = req.bindings.iter().map(parse_binding).collect();
    let valid: Vec<NewBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut outcomes = state.store.register_bindings(institution, valid).await?.into_iter();
    // A binding stale on arrival is notified at once.
    state.deliveries_wake.notify_one();
    let results = parsed
        .into_iter()
        .map(|p| {
            let outcome = p.and_then(|_| match outcomes.next() {
                Some(Ok(r)) => Ok(r),
                Some(Err(rej)) => Err(ApiError::new(ErrorCode::OutOfRange, rej.message)),
                None => Err(ApiError::internal("fewer outcomes than bindings")),
            });
            match outcome {
                Ok(r) => BindingResult { binding: Some(r.binding.into()), created: Some(r.created), error: None },
                Err(e) => BindingResult { binding: None, created: None, error: Some(e.into()) },
            }
        })
        .collect();
    Ok(Json(BindingsResponse { results }))
}

#[utoipa::path(
    get,
    path = "/v1/bindings/{id}",
    tag = "Bindings",
    summary = "One of your bindings",
    params(("id" = String, Path, description = "The binding id")),
    responses(
        (status = 200, description = "The binding", body = BindingView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such binding, or not yours", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn get_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<BindingView>> {
    Ok(Json(get(&state, &caller, &id).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/bindings/{id}",
    tag = "Bindings",
    summary = "Delete one of your bindings",
    params(("id" = String, Path, description = "The binding id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such binding, or not yours", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn delete_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingsQuery {
    /// Only the bindings of this account reference.
    pub account_ref: Option<String>,
    /// Only the bindings of this number (E.164). Not with `accountRef`.
    pub phone_number: Option<String>,
    /// The cursor from the previous page.
    pub after: Option<String>,
    /// Rows per page: 1 to page_rows_max, default 100.
    pub limit: Option<u32>,
}

/// What to find: all of an institution's bindings, those of an account reference, or of a number.
pub(crate) enum BindingsFilter {
    All,
    Account(String),
    Number(domain::PhoneNumber),
}

impl BindingsFilter {
    /// The filter of a query, its values parsed as the API parses them.
    pub(crate) fn of(account_ref: Option<&str>, phone_number: Option<&str>) -> ApiResult<BindingsFilter> {
        match (account_ref, phone_number) {
            (Some(_), Some(_)) => Err(ApiError::invalid("give accountRef or phoneNumber, not both")),
            (Some(a), None) => Ok(BindingsFilter::Account(
                workers::files::parse_account_ref(a)
                    .map_err(|r| ApiError::invalid(format!("accountRef: {}", r.message)))?
                    .as_str()
                    .to_string(),
            )),
            (None, Some(n)) => Ok(BindingsFilter::Number(phone("phoneNumber", n)?)),
            (None, None) => Ok(BindingsFilter::All),
        }
    }
}

/// The caller, if an institution: who may register, see and delete bindings.
pub(crate) fn institution_of(caller: &Caller) -> ApiResult<&store::Participant> {
    caller.require(&[Role::Institution])
}

/// A page of the caller's bindings that match `filter`, in id order after the cursor `after`.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    filter: BindingsFilter,
    after: &str,
    limit: u32,
) -> ApiResult<Vec<Binding>> {
    let institution = institution_of(caller)?;
    Ok(match filter {
        BindingsFilter::All => state.store.bindings(institution.seq, after, limit).await?,
        BindingsFilter::Account(a) => state.store.find_bindings(institution.seq, Some(a), None, after, limit).await?,
        BindingsFilter::Number(n) => state.store.find_bindings(institution.seq, None, Some(n), after, limit).await?,
    })
}

/// One of the caller's bindings; another's, or none, is the same 404.
pub(crate) async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Binding> {
    let institution = institution_of(caller)?;
    let Some(binding_id) = BindingId::parse(id) else { return Err(not_found(id)) };
    state.store.binding(institution.seq, &binding_id).await?.ok_or_else(|| not_found(id))
}

/// Deletes one of the caller's bindings; another's, or none, is the same 404.
pub(crate) async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let institution = institution_of(caller)?.clone();
    let Some(binding_id) = BindingId::parse(id) else { return Err(not_found(id)) };
    if state.store.delete_binding(institution, &binding_id).await? { Ok(()) } else { Err(not_found(id)) }
}

#[utoipa::path(
    get,
    path = "/v1/bindings",
    tag = "Bindings",
    summary = "Your bindings, a page at a time, all or those of an account or a number",
    params(BindingsQuery),
    responses(
        (status = 200, description = "A page", body = BindingsPage),
        (status = 400, description = "INVALID_ARGUMENT: bad limit, account reference or number, or both filters", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn list_bindings(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<BindingsQuery>,
) -> ApiResult<Json<BindingsPage>> {
    let limit = page_limit(&state, q.limit)?;
    let filter = BindingsFilter::of(q.account_ref.as_deref(), q.phone_number.as_deref())?;
    let page = find(&state, &caller, filter, q.after.as_deref().unwrap_or(""), limit).await?;
    let next_cursor = (page.len() == limit as usize).then(|| page.last().map(|b| b.id.to_string())).flatten();
    Ok(Json(BindingsPage { bindings: page.into_iter().map(Into::into).collect(), next_cursor }))
}
