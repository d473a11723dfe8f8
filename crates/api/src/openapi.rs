//! The OpenAPI 3.1 document, generated from the handlers and wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "numlink",
        description = "The clearinghouse for recycled phone numbers: carriers report number lifecycle events; \
                       institutions ask whether a number has changed hands since a date, register bindings and are \
                       notified; the holder of a number proves possession with a one-time code, asks institutions to \
                       unbind, and takes a signed proof of tenure. Participants authenticate with \
                       `Authorization: Bearer <api key>`, holders with a session token. Errors are \
                       `{status, code, message}`. Several nodes may serve one database: every response carries \
                       `numlink-position`, the change of the registry the node's answers reflect; a request with \
                       `numlink-min-position: <that number>` is answered by any node only once its answers reflect \
                       at least that change (it waits up to 2 s, then answers `503 POSITION_NOT_REACHED`, which \
                       may be retried). Any request may be answered `503 UNAVAILABLE` while the database is away \
                       (a restart, a failover): nothing of it was done, unless its reply was lost in flight; send \
                       it again, to any node. Any request may be answered `429 TOO_MANY_REQUESTS` with \
                       `Retry-After` (seconds) when its caller goes past its rate: a participant (all its API \
                       keys) by its role's limit, anything without a valid key by its client address. \
                       Writes are keyed (an event's `eventId`, a binding's account \
                       reference, an unbind request's institution), so a write sent again is a duplicate, never \
                       a second effect.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::camara::check,
        routes::checks::reassignment_checks,
        routes::events::lifecycle_events,
        routes::events::reported,
        routes::events::pending_ports,
        routes::files::upload_lifecycle_file,
        routes::files::upload_binding_file,
        routes::files::upload_check_file,
        routes::files::job_result,
        routes::bindings::register,
        routes::bindings::get_binding,
        routes::bindings::delete_binding,
        routes::bindings::list_bindings,
        routes::notifications::feed,
        routes::notifications::ack,
        routes::webhooks::add,
        routes::webhooks::list,
        routes::webhooks::delete,
        routes::webhooks::rotate,
        routes::webhooks::replay,
        routes::webhooks::get,
        routes::webhooks::deliveries,
        routes::webhooks::test,
        routes::webhooks::replay_delivery,
        routes::webhooks::enable,
        routes::kyc::rebind,
        routes::kyc::kyc_match,
        routes::sms::put_gateway,
        routes::sms::get_gateway,
        routes::sms::codes,
        routes::sms::test,
        routes::holder::request_otp,
        routes::holder::session,
        routes::holder::bindings,
        routes::holder::request_unbind,
        routes::holder::unbind_requests,
        routes::holder::lookups,
        routes::holder::attestation,
        routes::holder::jwks,
        routes::unbind::list,
        routes::unbind::get,
        routes::unbind::resolve,
        routes::reports::institutions,
        routes::files::list_jobs,
        routes::files::get_job,
        routes::files::delete_job,
        routes::files::job_rejections,
        routes::ops::healthz,
        routes::ops::metrics,
    ),
    modifiers(&ApiKeyAuth)
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("numlink API key (nlk_…)")).build(),
            ),
        );
        components.add_security_scheme(
            "holderToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("holder session token (nlh_…) from POST /v1/holder/session"))
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
