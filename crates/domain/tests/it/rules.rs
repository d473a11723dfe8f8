//! One row per case of R2 and R3.

use domain::answer::NoDataReason;
use domain::{AgingPolicy, Answer, EventKind::*, RejectionCode, reassigned_since};

use crate::{A, B, C, NPDB, Number, day};

const YES: Option<Answer> = Some(Answer::Yes);
const NO: Option<Answer> = Some(Answer::No);
const BEFORE_COVERAGE: Option<Answer> = Some(Answer::NoData(NoDataReason::BeforeCoverage));

#[test]
fn r2_table() {
    // (what, history builder, D, expected)
    type Build = fn(&mut Number);
    let rows: Vec<(&str, Build, &str, Option<Answer>)> = vec![
        ("no events, covered: held since before coverage", |_| {}, "2021-05-01", NO),
        ("no events, D before coverage", |_| {}, "2019-12-31", BEFORE_COVERAGE),
        ("D is the coverage start", |_| {}, "2020-01-01", NO),
        (
            "disconnection after D",
            |n| {
                n.ok(Disconnected, "2023-03-01", A);
            },
            "2023-01-01",
            YES,
        ),
        (
            "disconnection on D: inclusive boundary",
            |n| {
                n.ok(Disconnected, "2023-03-01", A);
            },
            "2023-03-01",
            YES,
        ),
        (
            "disconnected the day before D, still disconnected",
            |n| {
                n.ok(Disconnected, "2023-03-01", A);
            },
            "2023-03-02",
            YES,
        ),
        (
            "disconnection before D, reissued before D",
            |n| {
                n.ok(Disconnected, "2023-03-01", A).ok(Activated, "2023-06-01", A);
            },
            "2023-07-01",
            NO,
        ),
        (
            "reissued on D: the holder at D is the current one",
            |n| {
                n.ok(Disconnected, "2023-03-01", A).ok(Activated, "2023-06-01", A);
            },
            "2023-06-01",
            NO,
        ),
        (
            "D in the gap after a disconnection, reissued later",
            |n| {
                n.ok(Disconnected, "2023-03-01", A).ok(Activated, "2023-06-01", A);
            },
            "2023-04-15",
            YES,
        ),
        (
            "transfer after D",
            |n| {
                n.ok(Transferred, "2024-02-01", A);
            },
            "2024-01-01",
            YES,
        ),
        (
            "transfer on D: inclusive",
            |n| {
                n.ok(Transferred, "2024-02-01", A);
            },
            "2024-02-01",
            YES,
        ),
        (
            "transfer before D",
            |n| {
                n.ok(Transferred, "2024-02-01", A);
            },
            "2024-02-02",
            NO,
        ),
        (
            "porting is not a change of holder",
            |n| {
                n.ok(PortedOut, "2024-02-01", A).ok(PortedIn, "2024-02-01", B);
            },
            "2024-01-01",
            NO,
        ),
        (
            "port then disconnection by the recipient",
            |n| {
                n.ok(PortedOut, "2024-02-01", A).ok(PortedIn, "2024-02-01", B).ok(Disconnected, "2024-05-01", B);
            },
            "2024-01-01",
            YES,
        ),
        (
            "disconnection before coverage, D before coverage: still yes (step 3 first)",
            |n| {
                n.ok(Disconnected, "2019-06-01", A);
            },
            "2019-01-01",
            YES,
        ),
        (
            "activation as first event after D: someone else now",
            |n| {
                n.ok(Activated, "2022-01-01", A);
            },
            "2021-01-01",
            YES,
        ),
    ];
    for (what, build, d, expected) in rows {
        let mut n = Number::in_range_of_a();
        build(&mut n);
        assert_eq!(n.ask(day(d)), expected, "{what}");
    }
}

#[test]
fn r2_after_today_is_out_of_range() {
    let n = Number::in_range_of_a();
    assert_eq!(n.ask(day("2025-07-01")), None);
    assert_eq!(n.ask(day("2025-06-30")), NO, "today itself is allowed");
}

#[test]
fn r2_unknown_number_and_coverage_from_first_event() {
    let mut n = Number::new("+447700900123", None, None);
    assert_eq!(n.ask(day("2024-01-01")), Some(Answer::NoData(NoDataReason::UnknownNumber)));
    // A number in no range becomes known through a port into a carrier (from a carrier not on the
    // platform: only the number-portability database can report it); coverage starts then.
    assert_eq!(n.report(PortedIn, "2024-03-01", B).unwrap_err().code, RejectionCode::PortPending);
    n.port(PortedIn, "2024-03-01", NPDB, B).unwrap();
    assert_eq!(n.ask(day("2024-02-01")), BEFORE_COVERAGE);
    assert_eq!(n.ask(day("2024-03-01")), NO);
    let facts = n.facts();
    assert_eq!(facts.coverage_start, Some(day("2024-03-01")));
    assert_eq!(reassigned_since(&facts, day("2024-04-01"), day("2025-01-01")), Ok(Answer::No));
}

#[test]
fn r3_table() {
    type Build = fn(&mut Number);
    use domain::RejectionCode as R;
    // (what, history, (kind, date, carrier) offered, expected rejection or None for accepted)
    type Offer<'a> = (domain::EventKind, &'a str, domain::CarrierId);
    let rows: Vec<(&str, Build, Offer, Option<RejectionCode>)> = vec![
        ("first event may be any type", |_| {}, (Transferred, "2023-01-01", A), None),
        ("date after today", |_| {}, (Disconnected, "2025-07-01", A), Some(R::OutOfRange)),
        ("today is allowed", |_| {}, (Disconnected, "2025-06-30", A), None),
        ("carrier outside its ranges", |_| {}, (Disconnected, "2023-01-01", B), Some(R::NotNumberHolder)),
        (
            "activation of a held number",
            |n| {
                n.ok(Activated, "2023-01-01", A);
            },
            (Activated, "2023-02-01", A),
            Some(R::StateConflict),
        ),
        (
            "disconnection of a disconnected number",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (Disconnected, "2023-02-01", A),
            Some(R::StateConflict),
        ),
        (
            "transfer of a disconnected number",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (Transferred, "2023-02-01", A),
            Some(R::StateConflict),
        ),
        (
            "a port of a disconnected number waits like any other (it tells nothing of the number)",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (PortedIn, "2023-02-01", B),
            Some(R::PortPending),
        ),
        (
            "the donor's port of a disconnected number",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (PortedOut, "2023-02-01", A),
            Some(R::StateConflict),
        ),
        (
            "+86 aging: 89 days is too soon",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (Activated, "2023-03-31", A),
            Some(R::AgingViolation),
        ),
        (
            "+86 aging: 90 days is enough",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (Activated, "2023-04-01", A),
            None,
        ),
        ("ported_out from the serving carrier", |_| {}, (PortedOut, "2023-01-01", A), None),
        ("ported_out from a non-serving carrier", |_| {}, (PortedOut, "2023-01-01", B), Some(R::NotNumberHolder)),
        ("ported_in on its own word waits for the donor", |_| {}, (PortedIn, "2023-01-01", B), Some(R::PortPending)),
        ("ported_in from the serving carrier waits too", |_| {}, (PortedIn, "2023-01-01", A), Some(R::PortPending)),
        (
            "ported_in completes the donor's ported_out of the same day",
            |n| {
                n.ok(PortedOut, "2023-01-01", A);
            },
            (PortedIn, "2023-01-01", B),
            None,
        ),
        (
            "ported_in of another day than the ported_out waits",
            |n| {
                n.ok(PortedOut, "2023-01-01", A);
            },
            (PortedIn, "2023-01-02", B),
            Some(R::PortPending),
        ),
        (
            "a ported_out naming a recipient is completed by that carrier only",
            |n| {
                n.port(PortedOut, "2023-01-01", A, B).unwrap();
            },
            (PortedIn, "2023-01-01", C),
            Some(R::PortPending),
        ),
        (
            "the named recipient completes it",
            |n| {
                n.port(PortedOut, "2023-01-01", A, C).unwrap();
            },
            (PortedIn, "2023-01-01", C),
            None,
        ),
        (
            "donor reports after the port",
            |n| {
                n.ok(PortedOut, "2023-01-01", A).ok(PortedIn, "2023-01-01", B);
            },
            (Disconnected, "2023-02-01", A),
            Some(R::NotNumberHolder),
        ),
        (
            "recipient reports after the port",
            |n| {
                n.ok(PortedOut, "2023-01-01", A).ok(PortedIn, "2023-01-01", B);
            },
            (Disconnected, "2023-02-01", B),
            None,
        ),
        (
            "donor still serves before the port date",
            |n| {
                n.ok(PortedOut, "2023-06-01", A).ok(PortedIn, "2023-06-01", B);
            },
            (Transferred, "2023-02-01", A),
            None,
        ),
        (
            "port back to the range holder",
            |n| {
                n.ok(PortedOut, "2023-01-01", A).ok(PortedIn, "2023-01-01", B).ok(PortedOut, "2023-06-01", B);
            },
            (PortedIn, "2023-06-01", A),
            None,
        ),
        (
            "between ported_out and ported_in nobody may report",
            |n| {
                n.ok(PortedOut, "2023-01-01", A);
            },
            (Disconnected, "2023-02-01", A),
            Some(R::NotNumberHolder),
        ),
        (
            "a second recipient of the same port conflicts with the first",
            |n| {
                n.ok(PortedOut, "2023-01-01", A).ok(PortedIn, "2023-01-01", C);
            },
            (PortedIn, "2023-01-01", B),
            Some(R::StateConflict),
        ),
        (
            "the portability database reports a whole port",
            |n| {
                n.port(PortedIn, "2023-01-01", NPDB, B).unwrap();
            },
            (Disconnected, "2023-02-01", B),
            None,
        ),
        (
            "a whole port takes the number from the serving carrier",
            |n| {
                n.port(PortedIn, "2023-01-01", NPDB, B).unwrap();
            },
            (Disconnected, "2023-02-01", A),
            Some(R::NotNumberHolder),
        ),
        (
            "a whole port of a disconnected number",
            |n| {
                n.ok(Disconnected, "2023-01-01", A).port(PortedIn, "2023-01-01", NPDB, B).unwrap_err();
            },
            (Activated, "2023-06-01", A),
            None,
        ),
        (
            "late disconnection before a reissue",
            |n| {
                n.ok(Activated, "2023-06-01", A);
            },
            (Disconnected, "2023-01-01", A),
            None,
        ),
        (
            "late disconnection that breaks the aging of a later reissue",
            |n| {
                n.ok(Activated, "2023-06-01", A);
            },
            (Disconnected, "2023-05-01", A),
            Some(R::AgingViolation),
        ),
        (
            "late activation that makes a later activation impossible",
            |n| {
                n.ok(Activated, "2023-06-01", A);
            },
            (Activated, "2023-01-01", A),
            Some(R::StateConflict),
        ),
        (
            "late port that takes the number from under later events",
            |n| {
                n.ok(Disconnected, "2023-06-01", A);
            },
            (PortedOut, "2023-01-01", A),
            Some(R::StateConflict),
        ),
        (
            "within a day, disconnected sorts before activated, so aging applies",
            |n| {
                n.ok(Activated, "2023-01-01", A);
            },
            (Disconnected, "2023-01-01", A),
            Some(R::AgingViolation),
        ),
        (
            "a transfer and a disconnection on one day: transfer second",
            |n| {
                n.ok(Disconnected, "2023-01-01", A);
            },
            (Transferred, "2023-01-01", A),
            Some(R::StateConflict),
        ),
    ];
    for (what, build, (kind, date, carrier), expected) in rows {
        let mut n = Number::in_range_of_a();
        build(&mut n);
        let got = n.report(kind, date, carrier).err().map(|r| {
            assert!(r.message.contains(date), "{what}: the message names the date: {}", r.message);
            r.code
        });
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn r3_aging_per_country_code() {
    // +1: 45 days by default.
    let mut us = Number::new("+12025550123", Some(A), Some(day("2020-01-01")));
    us.ok(Disconnected, "2024-01-01", A);
    assert_eq!(us.report(Activated, "2024-02-14", A).unwrap_err().code, RejectionCode::AgingViolation);
    us.ok(Activated, "2024-02-15", A);
    // A configured code overrides the default.
    let mut uk = Number::new("+447700900123", Some(A), Some(day("2020-01-01")));
    uk.aging = AgingPolicy::aging_default().with_code("44", 30);
    uk.ok(Disconnected, "2024-01-01", A);
    assert_eq!(uk.report(Activated, "2024-01-30", A).unwrap_err().code, RejectionCode::AgingViolation);
    uk.ok(Activated, "2024-01-31", A);
}

#[test]
fn r3_who_reports_a_port() {
    use domain::history::check_reporter;
    assert!(check_reporter(PortedOut, Some(B), false).is_ok(), "a donor names the recipient");
    assert!(check_reporter(Disconnected, None, false).is_ok());
    for (kind, recipient, portability) in [
        (PortedIn, Some(B), false),
        (Disconnected, Some(B), false),
        (PortedIn, None, true),
        (PortedOut, Some(B), true),
        (Activated, None, true),
    ] {
        let r = check_reporter(kind, recipient, portability).unwrap_err();
        assert_eq!(r.code, RejectionCode::InvalidArgument, "{kind} {recipient:?} {portability}: {}", r.message);
    }
    assert!(check_reporter(PortedIn, Some(B), true).is_ok(), "the portability database reports a whole port");
}
