//! Real names: the carrier's record of the current holder (sent with `activated` and `transferred`
//! events), CAMARA KYC Match against it, and rebinding an account to a customer's new number when the
//! real names match.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use store::{BindingId, Kyc, KycAnswer, Rebind, Role};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictJson;
use crate::routes::bindings::BindingView;
use crate::routes::{date, phone};
use crate::state::AppState;

/// CAMARA's `idDocumentType` values.
const ID_DOCUMENT_TYPES: [&str; 7] = [
    "passport",
    "national_id_card",
    "residence_permit",
    "diplomatic_id",
    "driver_licence",
    "social_security_id",
    "other",
];

/// A real-name attribute as given: not empty, at most `chars_max` characters (`kyc_attribute_chars_max`).
fn attribute(field: &str, v: &Option<String>, chars_max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(ApiError::invalid(format!("{field} is empty"))),
        Some(s) if s.chars().count() > chars_max => {
            Err(ApiError::invalid(format!("{field} is longer than {chars_max} characters")))
        }
        other => Ok(other.clone()),
    }
}

fn document_type(v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(t) if !ID_DOCUMENT_TYPES.contains(&t.as_str()) => Err(ApiError::invalid(format!(
            "idDocumentType \"{}\" is not one of {}",
            domain::number::truncate_for_message(t),
            ID_DOCUMENT_TYPES.join(", ")
        ))),
        other => Ok(other.clone()),
    }
}

/// A holder's real-name record as a carrier sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KycRecord {
    #[schema(example = "66666666q")]
    pub id_document: Option<String>,
    /// `passport`, `national_id_card`, `residence_permit`, `diplomatic_id`, `driver_licence`,
    /// `social_security_id` or `other`.
    pub id_document_type: Option<String>,
    /// The complete name.
    #[schema(example = "Federica Sanchez Arjona")]
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[schema(example = "1978-08-22")]
    pub birthdate: Option<String>,
}

impl KycRecord {
    pub(crate) fn parse(&self, chars_max: usize) -> Result<Kyc, ApiError> {
        let kyc = Kyc {
            id_document: attribute("kyc.idDocument", &self.id_document, chars_max)?,
            id_document_type: document_type(&self.id_document_type)?,
            name: attribute("kyc.name", &self.name, chars_max)?,
            given_name: attribute("kyc.givenName", &self.given_name, chars_max)?,
            family_name: attribute("kyc.familyName", &self.family_name, chars_max)?,
            birthdate: self.birthdate.as_deref().map(|d| date("kyc.birthdate", d)).transpose()?,
        };
        if kyc.is_empty() {
            return Err(ApiError::invalid("kyc has no attribute"));
        }
        Ok(kyc)
    }
}

/// CAMARA KYC Match v0.4 `KYC_MatchRequestBody`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KycMatchRequest {
    #[schema(example = "+34629255833")]
    pub phone_number: Option<String>,
    pub id_document: Option<String>,
    pub id_document_type: Option<String>,
    pub id_document_expiry_date: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name_kana_hankaku: Option<String>,
    pub name_kana_zenkaku: Option<String>,
    pub middle_names: Option<String>,
    pub family_name_at_birth: Option<String>,
    pub address: Option<String>,
    pub street_name: Option<String>,
    pub street_number: Option<String>,
    pub postal_code: Option<String>,
    pub region: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    pub house_number_extension: Option<String>,
    pub birthdate: Option<String>,
    pub email: Option<String>,
    pub gender: Option<String>,
    pub city_of_birth: Option<String>,
    pub country_of_birth: Option<String>,
    pub nationality: Option<String>,
}

/// CAMARA KYC Match v0.4 `KYC_MatchResponse`: one `…Match` per attribute asked about, `"true"`,
/// `"false"` or `"not_available"`. No scores: numlink keeps only keyed hashes, which say equal or not.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KycMatchResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_document_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_document_type_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_document_expiry_date_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_kana_hankaku_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_kana_zenkaku_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_names_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name_at_birth_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_name_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_number_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub house_number_extension_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city_of_birth_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_of_birth_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nationality_match: Option<&'static str>,
}

crate::redacted_debug!(KycRecord, KycMatchRequest, RebindRequest);

fn shown(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "true",
        Some(false) => "false",
        None => "not_available",
    }
}

/// The attributes numlink does not keep: asked about, they are `not_available`. Each is checked for
/// its format first.
fn others_asked(r: &KycMatchRequest, chars_max: usize) -> Result<bool, ApiError> {
    if let Some(d) = &r.id_document_expiry_date {
        date("idDocumentExpiryDate", d)?;
    }
    if let Some(e) = &r.email
        && (!e.contains('@') || e.chars().any(char::is_whitespace))
    {
        return Err(ApiError::invalid("email is not an email address"));
    }
    if let Some(g) = &r.gender
        && !["MALE", "FEMALE", "OTHER"].contains(&g.as_str())
    {
        return Err(ApiError::invalid("gender must be MALE, FEMALE or OTHER"));
    }
    let all = [
        ("idDocumentExpiryDate", &r.id_document_expiry_date),
        ("nameKanaHankaku", &r.name_kana_hankaku),
        ("nameKanaZenkaku", &r.name_kana_zenkaku),
        ("middleNames", &r.middle_names),
        ("familyNameAtBirth", &r.family_name_at_birth),
        ("address", &r.address),
        ("streetName", &r.street_name),
        ("streetNumber", &r.street_number),
        ("postalCode", &r.postal_code),
        ("region", &r.region),
        ("locality", &r.locality),
        ("country", &r.country),
        ("houseNumberExtension", &r.house_number_extension),
        ("email", &r.email),
        ("gender", &r.gender),
        ("cityOfBirth", &r.city_of_birth),
        ("countryOfBirth", &r.country_of_birth),
        ("nationality", &r.nationality),
    ];
    let mut any = false;
    for (field, v) in all {
        any |= attribute(field, v, chars_max)?.is_some();
    }
    Ok(any)
}

#[utoipa::path(
    post,
    path = "/kyc-match/v0.4/match",
    tag = "KYC Match",
    summary = "CAMARA KYC Match: do these attributes match the number's current holder?",
    description = "Per attribute asked about: `\"true\"`, `\"false\"`, or `\"not_available\"` when the carrier sent no such \
                   attribute. numlink keeps idDocument, idDocumentType, name, givenName, familyName and birthdate, \
                   compared in normal form (case, spacing and punctuation do not matter); every other attribute is \
                   `not_available`. No match scores. An institution matches one number at most 5 times a day \
                   (UTC; rebinding attempts included), and each match shows in the holder's lookups.",
    request_body = KycMatchRequest,
    responses(
        (status = 200, body = KycMatchResponse),
        (status = 400, description = "INVALID_ARGUMENT, or KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION (only a phoneNumber)", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "IDENTIFIER_NOT_FOUND: nobody holds the number", body = ErrorInfo),
        (status = 422, description = "MISSING_IDENTIFIER: no phoneNumber", body = ErrorInfo),
        (status = 429, description = "TOO_MANY_REQUESTS: this institution matched this number 5 times today (see Retry-After)", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn kyc_match(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<KycMatchRequest>,
) -> ApiResult<Json<KycMatchResponse>> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let chars_max = state.limits.kyc_attribute_chars_max;
    let asked = Kyc {
        id_document: attribute("idDocument", &req.id_document, chars_max)?,
        id_document_type: document_type(&req.id_document_type)?,
        name: attribute("name", &req.name, chars_max)?,
        given_name: attribute("givenName", &req.given_name, chars_max)?,
        family_name: attribute("familyName", &req.family_name, chars_max)?,
        birthdate: req.birthdate.as_deref().map(|d| date("birthdate", d)).transpose()?,
    };
    let others = others_asked(&req, chars_max)?;
    let n = match &req.phone_number {
        Some(p) => Some(phone("phoneNumber", p)?),
        None => None,
    };
    match (n, asked.is_empty() && !others) {
        (None, true) => return Err(ApiError::invalid("the body asks about nothing: give phoneNumber and attributes")),
        (Some(_), true) => {
            return Err(ApiError::new(
                ErrorCode::KycInvalidParamCombination,
                "give at least one attribute besides phoneNumber",
            ));
        }
        (None, false) => return Err(ApiError::new(ErrorCode::MissingIdentifier, "no phoneNumber given")),
        (Some(_), false) => {}
    }
    let n = n.expect("checked above");
    let max = state.limits.kyc_matches_per_number_per_day_max;
    let m = match state.store.kyc_match(institution, n, asked, max).await? {
        KycAnswer::Matched(m) => m,
        KycAnswer::NoHolder => {
            return Err(ApiError::new(
                ErrorCode::IdentifierNotFound,
                "the phone number provided is not associated with a customer account",
            ));
        }
        KycAnswer::Limited { retry_after_secs } => return Err(kyc_limited(max, retry_after_secs)),
    };
    let na = |v: &Option<String>| v.as_ref().map(|_| "not_available");
    Ok(Json(KycMatchResponse {
        id_document_match: req.id_document.as_ref().map(|_| shown(m[0])),
        id_document_type_match: req.id_document_type.as_ref().map(|_| shown(m[1])),
        name_match: req.name.as_ref().map(|_| shown(m[2])),
        given_name_match: req.given_name.as_ref().map(|_| shown(m[3])),
        family_name_match: req.family_name.as_ref().map(|_| shown(m[4])),
        birthdate_match: req.birthdate.as_ref().map(|_| shown(m[5])),
        id_document_expiry_date_match: na(&req.id_document_expiry_date),
        name_kana_hankaku_match: na(&req.name_kana_hankaku),
        name_kana_zenkaku_match: na(&req.name_kana_zenkaku),
        middle_names_match: na(&req.middle_names),
        family_name_at_birth_match: na(&req.family_name_at_birth),
        address_match: na(&req.address),
        street_name_match: na(&req.street_name),
        street_number_match: na(&req.street_number),
        postal_code_match: na(&req.postal_code),
        region_match: na(&req.region),
        locality_match: na(&req.locality),
        country_match: na(&req.country),
        house_number_extension_match: na(&req.house_number_extension),
        email_match: na(&req.email),
        gender_match: na(&req.gender),
        city_of_birth_match: na(&req.city_of_birth),
        country_of_birth_match: na(&req.country_of_birth),
        nationality_match: na(&req.nationality),
    }))
}

/// The answer once an institution has matched one number's record `max` times today.
fn kyc_limited(max: u32, retry_after_secs: i64) -> ApiError {
    ApiError::new(
        ErrorCode::TooManyRequests,
        format!(
            "this number's real-name record was matched {max} times today by this institution \
             (kyc_matches_per_number_per_day_max, rebinding included): try again tomorrow (UTC)"
        ),
    )
    .with_retry_after(retry_after_secs)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RebindRequest {
    #[schema(example = "+8613900139000")]
    pub new_phone_number: String,
    /// The customer's identity document number, as on the carrier's real-name record.
    pub id_document: String,
    /// The customer's complete name.
    pub name: String,
}

#[utoipa::path(
    post,
    path = "/v1/bindings/{id}/rebind",
    tag = "Bindings",
    summary = "Move a binding to the customer's new number, if the real names match",
    description = "The binding moves to newPhoneNumber (boundOn today) only if both idDocument and name match the carrier's \
                   real-name record of the new number's current holder; otherwise 422 KYC_MISMATCH names what did not \
                   match, and nothing changes. Audited.",
    params(("id" = String, Path, description = "The binding id")),
    request_body = RebindRequest,
    responses(
        (status = 200, description = "The binding, on its new number", body = BindingView),
        (status = 400, description = "INVALID_ARGUMENT", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such binding, or not yours", body = ErrorInfo),
        (status = 409, description = "CONFLICT: this account is already bound to the new number", body = ErrorInfo),
        (status = 422, description = "KYC_MISMATCH", body = ErrorInfo),
        (status = 429, description = "TOO_MANY_REQUESTS: matched against the new number 5 times today, KYC Match included (see Retry-After)", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn rebind(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<RebindRequest>,
) -> ApiResult<Json<BindingView>> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let n = phone("newPhoneNumber", &req.new_phone_number)?;
    let chars_max = state.limits.kyc_attribute_chars_max;
    let doc = attribute("idDocument", &Some(req.id_document), chars_max)?.unwrap_or_default();
    let name = attribute("name", &Some(req.name), chars_max)?.unwrap_or_default();
    let max = state.limits.kyc_matches_per_number_per_day_max;
    let Some(binding_id) = BindingId::parse(&id) else { return Err(rebind_not_found(&id)) };
    match state.store.rebind(institution, &binding_id, n, &doc, &name, max).await? {
        Rebind::Rebound(b) => Ok(Json(b.into())),
        Rebind::Limited { retry_after_secs } => Err(kyc_limited(max, retry_after_secs)),
        Rebind::NotFound => Err(rebind_not_found(&id)),
        Rebind::AlreadyBound => {
            Err(ApiError::new(ErrorCode::Conflict, "this account is already bound to the new number"))
        }
        Rebind::Mismatch { id_document, name } => {
            let mut failed = Vec::new();
            for (field, m) in [("idDocument", id_document), ("name", name)] {
                match m {
                    Some(true) => {}
                    Some(false) => failed.push(format!("{field} does not match")),
                    None => failed.push(format!("{field} is not available for the new number's holder")),
                }
            }
            Err(ApiError::new(
                ErrorCode::KycMismatch,
                format!("the new number's holder is not the customer: {}; nothing changed", failed.join(", ")),
            ))
        }
    }
}

fn rebind_not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no binding \"{}\"", domain::number::truncate_for_message(id)))
}
