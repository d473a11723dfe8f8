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

moment-zoned = { $date }, { $time } { $zone }

## The holder's portal

nav-label = Your number
nav-signed-in-as = Signed in as
nav-institutions = Institutions
nav-requests = Requests
nav-proof = Proof of tenure
nav-lookups = Who looked it up
nav-sign-out = Sign out

start-title = Is your new number still bound to someone else's accounts?
start-intro = If your phone number used to belong to someone else, banks and apps may still send you their messages and codes. Here you can see which institutions still have the number on an account opened before it was yours, and ask them to remove it, online.
start-step-code = We send a code to your number by SMS, to prove it is yours.
start-step-list = You see which institutions bound the number before you got it.
start-step-unbind = You ask one, several or all of them to unbind it; each must answer within a set number of working days.
start-step-proof = You get a signed proof of tenure that a bank clerk can check.
start-number-label = Your mobile number
start-number-hint = With the country code, for example +86 138 0013 8000.
start-submit = Send me a code
start-privacy = numlink never tells anyone whose accounts the number was bound to. Whether anyone holds the number or not, this page answers the same way.
start-clerk-link = Working at a bank? Check a proof of tenure
number-missing = Enter your mobile number.
number-invalid = This is not a phone number numlink can read. Type it with the country code, for example +86 138 0013 8000.
signed-out-notice = You have signed out. Nothing of your session stays in this browser.

code-title = Enter the code
code-sent = If { $number } is in service, a 6-digit code is on its way to it by SMS. It is valid for { $minutes } minutes.
code-label = The 6-digit code
code-hint = Never give this code to anyone: numlink, banks and carriers will never ask you for it.
code-submit = Continue
code-none-title = No code?
code-none-body = SMS can take a minute. Check that the number is right; you can ask for another code shortly.
code-resend = Send another code
code-resend-countdown = You can ask for another code in { $seconds } s.
code-other-number = Use another number
code-wrong = That code is not right. You have { $left } more tries with this code.
code-malformed = Type the 6 digits of the SMS.
code-wait = A code was sent a moment ago. You can ask for another in { $seconds } seconds.

institutions-title = Institutions that bound your number before you
institutions-intro = These institutions have your number on accounts opened before it was yours. You will never see whose accounts they are. Choose whom to ask to remove the number.
institutions-legend = Choose institutions
institution-bindings = { $count ->
    [one] 1 account
   *[other] { $count } accounts
}
deadline-label = Answer due by
ask-selected = Ask the ones I chose
ask-all = Ask all of them
all-asked = You have asked every institution on the list.
choose-one = Choose at least one institution, or ask all of them.
nothing-to-unbind-title = Nothing to unbind
nothing-to-unbind-body = No institution in numlink has your number on an account opened before it was yours.
nothing-to-unbind-next = If you still receive someone else's messages, they come from an institution that is not in numlink: contact it directly, and show it your proof of tenure.

state-open = Asked, waiting for an answer
state-overdue = Overdue: no answer by the deadline
state-unbound = Unbound
state-rejected = Refused

reason-customer-reverified = The account holder confirmed this number with the institution after you got it. If that was not you, contact the institution.
reason-legal-hold = A court order or a regulation requires the institution to keep it for now.
reason-fraud-investigation = The account is under a fraud investigation; the institution keeps it until that ends.
reason-no-such-binding = The institution no longer has your number on any account.

confirm-title = Ask them to unbind your number?
confirm-intro = { $count ->
    [one] numlink will ask this institution to remove your number from the account it was bound to before you:
   *[other] numlink will ask these { $count } institutions to remove your number from the accounts it was bound to before you:
}
confirm-what-they-get = Each receives your request and your proof of tenure: your number and since when it is yours. Nothing else about you.
confirm-deadline = Each must answer by { $deadline }.
confirm-yes = Yes, ask them
confirm-back = Back

requests-title = Your requests
requests-none = You have not asked any institution yet.
requests-intro = Each institution must answer by its deadline. numlink shows the regulator who answers late.
requests-asked = Asked
requests-answered = Answered
requests-reason = Why
requests-overdue-help = If a request is overdue, the regulator sees it. You need do nothing more; you may also contact the institution.
asked-notice = { $count ->
    [one] Your request was sent to 1 institution.
   *[other] Your request was sent to { $count } institutions.
}

proof-title = Your proof of tenure
proof-intro = numlink signed this proof. Show it at a bank counter or send it to an institution: anyone can check it at numlink.
proof-qr-title = Show this code
proof-qr-help = A bank clerk scans it with a phone camera, and numlink's check page says whether the proof is valid.
proof-qr-label = QR code of the link that checks this proof
proof-text-title = Or copy it as text
proof-text-label = The proof, as text
proof-copy = Copy
proof-copied = Copied.
proof-download = Download
proof-verify-link = Check this proof on numlink's check page

lookups-title = Who looked up your number
lookups-intro = Institutions that asked numlink about your number over the last { $days } days (never from before it was yours).
lookups-none = Nobody has looked up your number since it became yours.
lookups-who = Institution
lookups-when = When
lookups-kind = What they asked
lookup-check = Has the number changed hands?
lookup-kyc-match = Does a name match the number's holder?

what-next = What you can do
action-new-code = Send me a new code
action-institutions = Back to the list
action-try-again = Try again
action-start = Start again

client-limited-title = Too many codes from this connection
client-limited-body = At most { $per_hour } codes an hour can be sent from one connection, to any numbers.
client-limited-next = Try again after { $when }.
sends-limited-title = Too many codes for this number
sends-limited-body = To protect the number, at most { $per_hour } codes an hour and { $per_day } a day are sent to it from one connection.
sends-limited-next = Use the last code you received, or try again after { $when }.
number-ceiling-title = Too many codes for this number today
number-ceiling-body = This number has received the most codes numlink sends it in a day ({ $per_day }).
number-ceiling-next = Try again after { $when }. If you did not ask for these codes, someone may be trying your number: you need do nothing.
locked-title = This number is locked for now
locked-body = Too many wrong codes were typed for this number in a row, so numlink stopped accepting codes for it.
locked-next = Try again after { $when }.
not-covered-title = numlink does not cover this number
not-covered-body = No carrier in numlink serves numbers like this one, so numlink cannot send it a code.
not-covered-next = Check the country code and the number. If it is right, ask your carrier whether it takes part in numlink.
out-of-tries-title = Too many tries with this code
out-of-tries-body = The code was typed wrong too many times, so it no longer works.
out-of-tries-next = Ask for a new code and type it carefully.
code-expired-title = This code has expired
code-expired-body = Codes are valid for { $minutes } minutes and work once.
code-expired-next = Ask for a new code.
code-stale-title = The number changed hands
code-stale-body = The number changed hands after this code was sent, so the code proves nothing now.
code-stale-next = If the number is yours now, ask for a new code.
session-ended-title = Your session has ended
session-ended-body = For your safety a session lasts { $minutes } minutes, and ends when you sign out.
session-ended-next = Sign in again with a new code.
hands-changed-title = The number changed hands
hands-changed-body = Since you signed in, the carrier reported that this number changed hands, so your session is over.
hands-changed-next = If the number is yours now, sign in again with a new code.
nobody-holds-title = Nobody holds this number now
nobody-holds-body = The carrier reports this number as not in service, so there is no tenure to prove.
nobody-holds-next = If you have this number, ask your carrier to check its records.
already-changed-title = The list has changed
already-changed-body = None of the institutions you chose still holds a binding that you can ask about. One may have just removed it.
already-changed-next = Go back to the list to see where things stand.
bad-form-title = Something in the form was not right
bad-form-body = numlink could not read what was sent.
bad-form-next = Go back and try again.
unavailable-title = numlink cannot answer right now
unavailable-body = Nothing you did caused this, and nothing was lost.
unavailable-next = Try again in a minute.
csrf-title = This form could not be accepted
csrf-body = numlink could not tell that it was sent from its own page. This happens when the browser does not keep cookies for numlink, or when the form came from another site.
csrf-next = Allow cookies for this site, then start again from numlink's page.

## The consoles: institutions, carriers, the regulator

console-nav-label = Your organisation
console-signed-in-as = Signed in as
console-nav-requests = Unbind requests
console-sign-in-title = Sign in to your numlink console
console-sign-in-intro = Institutions answer the unbind requests of the people who now hold their customers' old numbers here. Carriers and the regulator sign in here too.
console-key-label = Your organisation's API key
console-key-hint = The key that starts with "nlk_". It is exchanged for a session in this browser and never kept in it.
console-sign-in-submit = Sign in
console-no-key-title = No key?
console-no-key-body = The operator of numlink gives each organisation its key when it joins (numlink participant add) and a new one when asked (numlink participant rotate-key). Ask your organisation's contact with the operator.
console-holder-link = Is a recycled number yours? The holder's pages are here
console-key-refused = This key is not one numlink knows, or it was revoked. Check that you pasted the whole key.
console-too-many-failures = Too many wrong keys were sent from this connection. Try again after { $when }.
console-ended-notice = Your session ended after { $minutes } minutes without use, or its key was revoked. Sign in again.
console-home-title = Your console
console-home-body = Lifecycle files, your SMS gateway and the codes sent to your numbers are in the API for now: its documentation shows each call and lets you try it with your key.
console-api-docs = Open the API documentation
console-requests-title = Unbind requests
console-requests-intro = People who now hold a number that some of your accounts still use ask you to remove it from those accounts. Answer each by its deadline: the regulator sees who answers late.
console-open-title = To answer
console-open-none = No request is waiting for your answer.
console-answered-title = Answered
console-answered-none = You have not answered any request yet.
console-col-request = Request
console-col-deadline = Deadline
console-col-accounts = Accounts
console-col-answer = Answer
console-col-state = State
console-col-reason = Reason
console-col-account = Account
console-col-bound-on = Bound on
console-asked = Asked
console-answered-at = Answered
console-due-today = Due today
console-days-left = { $days ->
    [one] 1 day left
   *[other] { $days } days left
}
console-days-late = { $days ->
    [one] Overdue by 1 day
   *[other] Overdue by { $days } days
}
console-state-open = Waiting for your answer
console-state-overdue = Overdue
console-state-unbound = Unbound
console-state-rejected = Refused
console-request-title = Unbind request
console-accounts-title = The accounts it is about
console-accounts-intro = Your accounts bound to the number before the person asking got it, as they were when the request was made.
console-proof-title = The holder's proof of tenure
console-proof-as-of = Checked as of when the request was made:
console-open-more = Showing the { $shown } most urgent of { $total } open requests; answer these first, or use the API to list them all.
console-proof-gone = The proof sent with this request is no longer kept.
console-answer-title = Your answer
console-answer-legend = Choose an answer
console-outcome-unbound = Remove the number from these accounts
console-outcome-rejected = Refuse, with a reason
console-reason-label = Reason for refusing
console-reason-none = (none: only when removing)
console-reason-customer-reverified = The account holder confirmed this number with us after the new holder got it
console-reason-legal-hold = A court order or a regulation requires us to keep it
console-reason-fraud-investigation = The account is under a fraud investigation
console-reason-no-such-binding = We no longer have this number on any account
console-answer-submit = Send the answer
console-answered-notice = Your answer was recorded, and the person who asked can see it.
console-needs-reason = A refusal needs one of the reasons.
console-needs-outcome = Choose an answer: remove the number, or refuse with a reason.
action-console-home = Back to your console
action-console-requests = Back to the requests
console-not-found-title = Not found
console-not-found-body = None of your organisation's records has this id.
console-not-found-next = Go back to your console and choose from the list.
console-not-for-role-title = Not part of your console
console-not-for-role-body = This page is for another kind of organisation.
console-not-for-role-next = Go back to your console.
console-answered-before-title = Already answered
console-answered-before-body = This request was answered before, and the first answer stands.
console-answered-before-next = Go back to the requests to see the answer.
console-nav-report = Report
report-title = Who answers on time
report-intro = Per institution: the unbind requests it was sent and how it answered them, and the notifications it left unacknowledged past their deadline. Choose a period to see the requests and notifications made in it.
report-period = Period
report-period-hint = Both days included. Leave both empty for everything.
report-from = From
report-to = To
report-show = Show
report-bad-period = Give both days, the first not after the second. Showing everything instead.
report-as-of = As of
report-none = No institution has joined numlink yet.
report-caption = Unbind requests and notifications, per institution
report-col-institution = Institution
report-col-open = Open
report-col-overdue = Overdue
report-col-resolved = Answered
report-col-late = Answered late
report-col-rejected = Refused
report-col-median = Median time to answer
report-col-p90 = 90% answered within
report-col-unacked = Notifications unacknowledged past deadline
report-csv = Download as CSV
report-reason-customer-reverified = re-verified
report-reason-legal-hold = legal hold
report-reason-fraud-investigation = fraud investigation
report-reason-no-such-binding = no such binding
list-separator = , 
duration-under-a-minute = under a minute
duration-minutes = { $m } min
duration-hours-minutes = { $h } h { $m } min
duration-days-hours = { $d } d { $h } h
console-nav-notifications = Notifications
notice-title = Notifications
notice-intro = What happened to the numbers of your accounts, and the requests of their new holders, newest first. Acknowledge each with what you did: the regulator sees notifications left unacknowledged past their deadline.
notice-filter = Show
notice-filter-type = Kind
notice-filter-acked = Acknowledgement
notice-kind-all = All kinds
notice-kind-number-disconnected = Number disconnected
notice-kind-number-transferred = Number moved to another holder
notice-kind-number-reassigned = Number reissued to someone new
notice-kind-webhook-endpoint-disabled = Your webhook endpoint was disabled
notice-kind-unbind-requested = The new holder asks you to unbind
notice-acked-all = Acknowledged or not
notice-acked-no = Not acknowledged yet
notice-acked-yes = Acknowledged
notice-none = No notification to show.
notice-list = Notifications, newest first
notice-created = Sent
notice-event-date = Happened on
notice-reissuable-from = May be reissued from
notice-open-request = Open the request
notice-acked = Acknowledged: { $action }, { $when }
notice-action-label = What you did about the ones ticked
notice-action-unbound = Removed the number from the account
notice-action-customer-reverified = The customer confirmed the number again
notice-action-contact-suspended = Stopped contacting the number
notice-action-none = (none)
notice-ack-submit = Acknowledge
notice-done = { $count ->
    [one] 1 notification acknowledged.
   *[other] { $count } notifications acknowledged.
}
notice-older = Older notifications
console-nav-endpoints = Webhooks
endpoint-title = Webhook endpoints
endpoint-intro = numlink sends each notification to every endpoint you register, signed with its secret (Standard Webhooks), and tries again for days when it does not answer. An endpoint that fails for days is disabled, and you are told in the notifications.
endpoint-secret-title = The secret, shown this once
endpoint-secret-body = Put it in the receiver at
endpoint-secret-label = Signing secret
endpoint-list-title = Your endpoints
endpoint-none = You have no webhook endpoint: read the notifications here, or from the API's feed.
endpoint-enabled = Receiving
endpoint-disabled = Disabled
endpoint-created = Registered
endpoint-previous-until = The previous secret signs too until
endpoint-rotate = New secret
endpoint-delete = Delete
endpoint-add-title = Add an endpoint
endpoint-url-label = The endpoint's address
endpoint-url-hint = An https address reachable from the internet, for example https://bank.example/numlink/webhooks.
endpoint-add = Add
endpoint-refused = numlink cannot send to this address. It must be https, reachable from the internet (not an address inside a network), and you may have at most { $max } endpoints.
endpoint-deleted = The endpoint was deleted, with the deliveries still waiting for it.
endpoint-delete-title = Delete this endpoint?
endpoint-delete-body = Notifications will no longer be sent to it, and the deliveries waiting for it are dropped. The notifications stay in your list.
endpoint-delete-yes = Yes, delete it
carrier-ranges = Your number ranges
carrier-no-ranges = None registered
carrier-reporting-since = Reporting since
carrier-ranges-hint = numlink answers for the numbers of these ranges from the day reporting began. The operator changes them (numlink participant add).
carrier-lookup-title = What you reported for a number
carrier-lookup-label = Number
carrier-lookup-submit = Look up
carrier-lookup-none = You have reported no event for this number.
carrier-lookup-caption = Your events for
carrier-col-kind = Event
carrier-col-event-id = Your event id
carrier-col-recipient = Ported to
event-kind-ported-out = Ported out
event-kind-ported-in = Ported in
event-kind-disconnected = Disconnected
event-kind-transferred = Transferred to a new holder
event-kind-activated = Activated
notice-kind-webhook-test = A test of your webhook endpoint
endpoint-open-log = Deliveries and test
endpoint-back = ← All endpoints
endpoint-log-title = Webhook endpoint
endpoint-test = Send a test event
endpoint-enable = Enable again
endpoint-tested = A test event is on its way to this endpoint. Its delivery is at the top of the log below.
endpoint-replayed = The delivery is queued again, from its first attempt, with the same webhook-id.
endpoint-enabled-notice = The endpoint is enabled again: new notifications are sent to it. Deliveries that failed while it was disabled stay failed; send again the ones you need.
endpoint-is-disabled = This endpoint is disabled, so numlink sends nothing to it. Enable it again first.
endpoint-log-heading = Delivery log
endpoint-log-hint = Newest first. numlink tries a delivery again for days when the endpoint does not answer with a 2xx.
endpoint-log-refresh = Refresh
endpoint-log-none = Nothing has been sent to this endpoint yet.
endpoint-log-older = Older deliveries
delivery-pending = Waiting
delivery-delivered = Delivered
delivery-failed = Failed
delivery-made = Notification made
delivery-attempts = Attempts
delivery-status = Last answer
delivery-no-status = none
delivery-detail = Detail
delivery-next = Next attempt { $when }
delivery-id = webhook-id
delivery-replay = Send again
