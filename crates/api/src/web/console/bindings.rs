//! The institution's bindings: find those of an account reference or of a number, and delete one
//! after a confirmation, through the API's own functions (`routes::bindings`). A number is never
//! shown back but as it was typed: bindings keep only its keyed hash.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use store::Binding;

use super::super::forms::Form;
use super::super::{Chrome, Lang, see_other};
use super::{PostedBy, SignedIn};
use crate::routes::bindings::{self, BindingsFilter};
use crate::state::AppState;

/// Bindings shown for one search (an account has few; a number, one per account bound to it).
const FOUND_MAX: u32 = 200;
/// Characters of a search looked at.
const TYPED_MAX: usize = 140;

/// A binding, worded.
pub struct BindingRow {
    pub id: String,
    pub account: String,
    pub bound_on: String,
    pub stale: bool,
    pub created: String,
}

impl BindingRow {
    fn new(lang: Lang, tz: &jiff::tz::TimeZone, b: Binding) -> BindingRow {
        BindingRow {
            id: b.id.to_string(),
            account: b.account_ref,
            bound_on: lang.day(b.bound_on),
            stale: b.stale,
            created: lang.stored_moment(&b.created_at, tz),
        }
    }
}

#[derive(Template)]
#[template(path = "console_bindings.html")]
pub(super) struct BindingsPage {
    c: Chrome,
    /// `account` or `number`: what the search is by.
    by: String,
    typed: String,
    alert: Option<String>,
    /// The bindings found, once a search was made.
    found: Option<Vec<BindingRow>>,
    /// More than were shown.
    more: bool,
    notice: Option<String>,
}

/// `GET /console/bindings[?by=account|number&q=&deleted=1]`: a search of the institution's bindings.
pub async fn bindings(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    // Who may search is decided first, as the API decides it, whatever was typed.
    if let Err(e) = bindings::institution_of(&caller) {
        return ctx.refused_for(&caller, e);
    }
    let lang = ctx.lang;
    let q = Form::of_query(query.as_deref());
    let by = if q.get("by") == Some("number") { "number" } else { "account" };
    let typed: String = q.get("q").unwrap_or("").trim().chars().take(TYPED_MAX).collect();
    let notice = q.get("deleted").map(|_| lang.t("binding-deleted"));
    let filter = match (by, typed.is_empty()) {
        (_, true) => Ok(None),
        ("number", false) => match super::super::portal::typed_number(&typed) {
            Some(n) => Ok(Some(BindingsFilter::Number(n))),
            None => Err(lang.t("number-invalid")),
        },
        (_, false) => BindingsFilter::of(Some(&typed), None).map(Some).map_err(|_| lang.t("binding-account-invalid")),
    };
    let (found, more, alert) = match filter {
        Err(alert) => (None, false, Some(alert)),
        Ok(None) => (None, false, None),
        Ok(Some(filter)) => match bindings::find(&state, &caller, filter, "", FOUND_MAX + 1).await {
            Ok(mut list) => {
                let more = list.len() > FOUND_MAX as usize;
                list.truncate(FOUND_MAX as usize);
                let tz = &state.holder.config.time_zone;
                (Some(list.into_iter().map(|b| BindingRow::new(lang, tz, b)).collect()), more, None)
            }
            Err(e) => return ctx.refused_for(&caller, e),
        },
    };
    let status = if alert.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = BindingsPage {
        c: ctx.console_chrome("/console/bindings", &caller, "bindings"),
        by: by.into(),
        typed,
        alert,
        found,
        more,
        notice,
    };
    ctx.render(status, page.render())
}

#[derive(Template)]
#[template(path = "console_binding_delete.html")]
pub(super) struct DeleteBindingPage {
    c: Chrome,
    b: BindingRow,
}

/// `GET /console/bindings/{id}/delete`: asks to confirm; `POST` deletes the binding.
pub async fn confirm_delete_binding(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match bindings::get(&state, &caller, &id).await {
        Ok(b) => {
            let b = BindingRow::new(ctx.lang, &state.holder.config.time_zone, b);
            let page = DeleteBindingPage { c: ctx.console_chrome("/console/bindings", &caller, "bindings"), b };
            ctx.render(StatusCode::OK, page.render())
        }
        Err(e) => ctx.refused_for(&caller, e),
    }
}

/// `POST /console/bindings/{id}/delete`: deletes it; no more notifications come for it.
pub async fn delete_binding(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    match bindings::delete(&state, &caller, &id).await {
        Ok(()) => see_other("/console/bindings?deleted=1"),
        Err(e) => ctx.refused_for(&caller, e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assert_all_worded, test_chrome};
    use super::*;
    use store::Role;

    #[test]
    fn binding_pages_render_in_both_languages() {
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            let row = |stale| BindingRow {
                id: "bnd_0".into(),
                account: "acct-1".into(),
                bound_on: "x".into(),
                stale,
                created: "x".into(),
            };
            for (found, more, alert) in [
                (None, false, None),
                (Some(vec![]), false, None),
                (Some(vec![row(true), row(false)]), true, None),
                (None, false, Some(lang.t("binding-account-invalid"))),
            ] {
                let page = BindingsPage {
                    c: test_chrome(lang, Role::Institution),
                    by: "number".into(),
                    typed: "+8613800138000".into(),
                    alert,
                    found,
                    more,
                    notice: Some(lang.t("binding-deleted")),
                };
                pages.push(page.render().unwrap());
            }
            pages.push(DeleteBindingPage { c: test_chrome(lang, Role::Institution), b: row(true) }.render().unwrap());
        }
        assert_all_worded(&pages);
    }
}
