//! The store's operations, written once over [`crate::sql::Conn`]: writes as methods of the writer's
//! context, reads as functions of a connection.

pub mod attestation;
pub mod audit;
pub mod bindings;
pub mod checklog;
pub mod console;
pub mod events;
pub mod jobs;
pub mod kyc;
pub mod leases;
pub mod limits;
pub mod otp;
pub mod participants;
pub mod report;
pub mod sms;
pub mod unbind;
pub mod webhooks;

/// The audit actor of what a holder does (the holder is not a participant; the subject names the number).
pub(crate) const HOLDER_ACTOR: &str = "holder";

/// `f` over `items` in one part per core (one part when they are few: a thread costs more than
/// hashing a few thousand items), the parts' results in order.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < 8_192 {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(items.len().div_ceil(threads)).map(|part| s.spawn(move || f(part))).collect();
        handles.into_iter().map(|h| h.join().expect("a worker thread does not panic")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the store writes into a row: these values are data on disk and never change, whatever
    /// variants are added or reordered. (Event kinds are pinned in `domain`.)
    #[test]
    fn stored_codes_are_pinned() {
        use jobs::{JobKind, JobState};
        let jobs = [
            (JobKind::Lifecycle.as_str(), "lifecycle"),
            (JobKind::Bindings.as_str(), "bindings"),
            (JobKind::Checks.as_str(), "checks"),
            (JobState::Queued.as_str(), "queued"),
            (JobState::Running.as_str(), "running"),
            (JobState::Succeeded.as_str(), "succeeded"),
            (JobState::Failed.as_str(), "failed"),
        ];
        use participants::Role;
        let roles = [
            (Role::Carrier.as_str(), "carrier"),
            (Role::Institution.as_str(), "institution"),
            (Role::Regulator.as_str(), "regulator"),
            (Role::Portability.as_str(), "portability"),
        ];
        use unbind::UnbindState;
        let states = [
            (UnbindState::Open.as_str(), "open"),
            (UnbindState::Unbound.as_str(), "unbound"),
            (UnbindState::Rejected.as_str(), "rejected"),
        ];
        use domain::RejectReason;
        let reasons = [
            (RejectReason::CustomerReverified.as_str(), "customer_reverified"),
            (RejectReason::LegalHold.as_str(), "legal_hold"),
            (RejectReason::FraudInvestigation.as_str(), "fraud_investigation"),
            (RejectReason::NoSuchBinding.as_str(), "no_such_binding"),
        ];
        use bindings::NotificationType as N;
        let notifications = [
            (N::Disconnected.as_str(), "number.disconnected"),
            (N::Transferred.as_str(), "number.transferred"),
            (N::Reassigned.as_str(), "number.reassigned"),
            (N::EndpointDisabled.as_str(), "webhook.endpoint_disabled"),
            (N::UnbindRequested.as_str(), "unbind.requested"),
            (N::Test.as_str(), "webhook.test"),
        ];
        for (got, want) in jobs.into_iter().chain(roles).chain(states).chain(reasons).chain(notifications) {
            assert_eq!(got, want);
        }
        assert_eq!(bindings::ACK_ACTIONS, ["unbound", "customer_reverified", "contact_suspended"]);
        use checklog::LoggedAnswer as A;
        for (answer, byte) in [(A::Yes, b'y'), (A::No, b'n'), (A::NoData, b'd'), (A::DateAfterToday, b'o')] {
            assert_eq!(answer.byte(), byte);
            assert_eq!(A::from_byte(byte), Some(answer));
        }
    }
}
