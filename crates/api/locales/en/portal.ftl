# The pages of numlink for people, in English. Every message here has its twin in zh-CN/portal.ftl
# (a test fails otherwise).

site-name = numlink
site-tagline = Recycled phone numbers, made safe
lang-switch-label = Language
skip-to-content = Skip to content
footer-note = numlink keeps a tamper-evident record of every check and request.

verify-title = Check a proof of tenure
verify-intro = A proof of tenure says who has held a phone number since when. Paste it below, or open the link its QR code holds. numlink checks it against its own published keys.
verify-label = Proof of tenure
verify-hint = The long code that starts with "eyJ".
verify-submit = Check
verify-valid = Valid
verify-valid-detail = numlink issued this proof, and it has not been altered.
verify-invalid = Not valid
verify-claim-number = Phone number
verify-claim-held-since = Held since, at the latest
verify-claim-expires = Valid until
verify-claim-issuer = Issued by
verify-next-valid = You may rely on it for the number and the date shown, until it expires.
verify-next-invalid = Do not rely on it. Ask the holder to open numlink on their phone and show a new proof.
verify-why-malformed = This is not a proof of tenure: part of it is missing or was changed.
verify-why-unknown-key = It was not signed with a key numlink publishes.
verify-why-bad-signature = Its content was changed after numlink signed it.
verify-why-expired = It has expired. Proofs are valid for a few days; the holder can show a new one.
verify-why-wrong-issuer = It was issued by another platform.

moment-utc = { $date }, { $time } UTC
