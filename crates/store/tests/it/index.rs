//! The index answers as the tables do: random histories — late, out of order, across carriers' ports,
//! with numbers in no range and a range added afterwards — reported through the store, checked by the
//! index (`Store::check`) and by the tables (`Store::check_from_tables`); and again after a restart,
//! which builds the index from the tables. The same events reported to a store without the index (whose
//! writer reads every history) meet the same outcomes.

use domain::{Day, EventKind, PhoneNumber, Prefix};
use store::testing::TestDb;
use store::{NewEvent, NewParticipant, Participant, Role, Store, backend_tests};

backend_tests!(
    the_index_answers_as_the_tables_on_random_histories,
    a_commit_whose_reply_is_lost_reaches_the_index,
    events_of_another_server_on_the_database_are_read_from_the_tables,
    servers_on_one_database_follow_each_others_changes,
    a_server_behind_the_changes_still_logged_reads_every_number,
    a_snapshot_goes_into_a_directory_made_for_it,
    a_snapshot_of_the_index_never_answers_what_the_tables_would_not
);

/// A small deterministic generator (xorshift64*): the same histories on every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NUMBERS: [&str; 8] = [
    "+8613800138000",
    "+8613800138001",
    "+8613800139999",
    "+8613800140000",
    "+8613900000007",
    "+4915112345678",
    "+12025550123",
    "+8613700000001",
];

async fn carrier(store: &Store, name: &str, prefix: &str, since: Option<&str>) -> Participant {
    store
        .add_participant(NewParticipant {
            role: Role::Carrier,
            name: name.into(),
            prefixes: vec![Prefix::parse(prefix).unwrap()],
            reporting_since: since.map(|d| Day::parse(d).unwrap()),
        })
        .await
        .unwrap()
        .0
}

/// Carrier A on +86138 from 2020, B on +861380014 from 2021-03, C on +1 from 2022-07.
async fn three_carriers(store: &Store) -> [Participant; 3] {
    [
        carrier(store, "A", "+86138", Some("2020-01-01")).await,
        carrier(store, "B", "+861380014", Some("2021-03-01")).await,
        carrier(store, "C", "+1", Some("2022-07-01")).await,
    ]
}

async fn portability(store: &Store) -> Participant {
    let p = NewParticipant { role: Role::Portability, name: "NPDB".into(), prefixes: vec![], reporting_since: None };
    store.add_participant(p).await.unwrap().0
}

async fn compare(store: &Store, probes: &[Day]) -> Vec<Result<domain::Answer, domain::answer::DateAfterToday>> {
    let items: Vec<(PhoneNumber, Day)> =
        NUMBERS.iter().flat_map(|n| probes.iter().map(move |d| (PhoneNumber::parse(n).unwrap(), *d))).collect();
    let bank = store
        .add_participant(NewParticipant {
            role: Role::Institution,
            name: "Bank".into(),
            prefixes: vec![],
            reporting_since: None,
        })
        .await
        .unwrap()
        .0;
    let by_index = store.check(bank, items.clone()).await.unwrap();
    let by_tables = store.check_from_tables(items.clone()).await.unwrap();
    for ((item, a), b) in items.iter().zip(&by_index).zip(by_tables) {
        assert_eq!(*a, b, "{} on {}", item.0, item.1);
    }
    by_index
}

/// A valid life of one number, simulated forward from 2018: activations after the aging period,
/// disconnections, transfers, and ports between the carriers (the donor's `ported_out` and the
/// recipient's `ported_in` on one day). `serving` is the carrier that reports first.
fn life(rng: &mut Rng, n: &str, serving: usize, aging_days: i32, out: &mut Vec<(usize, NewEvent)>) {
    let number = PhoneNumber::parse(n).unwrap();
    let mut date = Day::parse("2018-01-01").unwrap();
    let mut serving = serving;
    let mut held = true;
    let ev = |i: usize, kind, date| NewEvent {
        event_id: domain::EventId::parse(&format!("{n}-{i}")).unwrap(),
        number,
        kind,
        date,
        kyc: None,
        recipient: None,
    };
    for i in 0..(4 + rng.below(8) as usize) {
        date = date.plus_days(1 + rng.below(300) as i32);
        if held {
            match rng.below(10) {
                0..=3 => {
                    out.push((serving, ev(i, EventKind::Disconnected, date)));
                    held = false;
                }
                4..=6 => out.push((serving, ev(i, EventKind::Transferred, date))),
                _ => {
                    let to = (serving + 1 + rng.below(2) as usize) % 3;
                    out.push((serving, ev(i * 100, EventKind::PortedOut, date)));
                    out.push((to, ev(i * 100 + 1, EventKind::PortedIn, date)));
                    serving = to;
                }
            }
        } else {
            date = date.plus_days(aging_days);
            out.push((serving, ev(i, EventKind::Activated, date)));
            held = true;
        }
    }
}

async fn the_index_answers_as_the_tables_on_random_histories(db: TestDb) {
    let (store, clock) = db.open("2026-06-30");
    let carriers = three_carriers(&store).await;
    // The same offers go to a store without the index, whose writer reads every number's history from
    // the tables: where the index says a number has none, the indexed writer does not read it, and no
    // outcome may differ for that.
    let plain_db = TestDb::get(db.backend).expect("a second database on this backend");
    let plain = plain_db.open_without_index(clock.clone());
    let plain_carriers = three_carriers(&plain).await;
    // The number-portability database reports whole ports (reporter 3); a port's recipient "A" is
    // carrier A of each store.
    let (npdb, plain_npdb) = (portability(&store).await, portability(&plain).await);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Every number's life; numbers in no range start with a whole port to carrier A.
    let mut pool: Vec<(usize, NewEvent)> = Vec::new();
    for n in NUMBERS {
        let (first, aging) = match n {
            _ if n.starts_with("+861380014") => (1, 90),
            _ if n.starts_with("+86138") => (0, 90),
            _ if n.starts_with("+1") => (2, 45),
            _ => {
                let number = PhoneNumber::parse(n).unwrap();
                let date = Day::parse("2017-06-01").unwrap();
                let kind = EventKind::PortedIn;
                let recipient = Some("A".to_string());
                pool.push((
                    3,
                    NewEvent {
                        event_id: domain::EventId::parse(&format!("{n}-in")).unwrap(),
                        number,
                        kind,
                        date,
                        kyc: None,
                        recipient,
                    },
                ));
                (0, 90)
            }
        };
        life(&mut rng, n, first, aging, &mut pool);
    }
    // Offered in random order, a few at a time: late events all the time; a rejected one is offered
    // again later, as a carrier re-sends after fixing its order.
    let total = pool.len();
    let mut accepted = 0;
    let mut sent: Vec<(usize, NewEvent)> = Vec::new();
    // Duplicates and conflicts seen.
    let mut repeated = [0; 2];
    let mut pending = 0;
    for round in 0..200 {
        if pool.is_empty() {
            break;
        }
        let mut offer = Vec::new();
        for _ in 0..5.min(pool.len()) {
            offer.push(pool.swap_remove(rng.below(pool.len() as u64) as usize));
        }
        // Now and then an accepted event again (a duplicate), or its id with another day (a conflict).
        if !sent.is_empty() && rng.below(4) == 0 {
            let (c, mut e): (usize, NewEvent) = sent[rng.below(sent.len() as u64) as usize].clone();
            if rng.below(2) == 0 {
                e.date = e.date.plus_days(1);
            }
            offer.push((c, e));
        }
        let reporters = carriers.iter().chain([&npdb]).zip(plain_carriers.iter().chain([&plain_npdb]));
        for (who, (by, plain_by)) in reporters.enumerate() {
            let (mine, events): (Vec<_>, Vec<NewEvent>) =
                offer.iter().filter(|(c, _)| *c == who).map(|(c, e)| (*c, e.clone())).unzip();
            if events.is_empty() {
                continue;
            }
            let named = |events: &[NewEvent], a: &Participant| -> Vec<NewEvent> {
                let to_a =
                    |e: &NewEvent| NewEvent { recipient: e.recipient.as_ref().map(|_| a.id.to_string()), ..e.clone() };
                events.iter().map(to_a).collect()
            };
            let outcomes = store.report_events(by.clone(), named(&events, &carriers[0])).await.unwrap();
            let plain_outcomes =
                plain.report_events(plain_by.clone(), named(&events, &plain_carriers[0])).await.unwrap();
            assert_eq!(outcomes, plain_outcomes, "round {round}: {events:?}");
            for ((c, e), o) in mine.into_iter().zip(events).zip(outcomes) {
                match o {
                    store::Outcome::Accepted => {
                        accepted += 1;
                        sent.push((c, e));
                    }
                    store::Outcome::Duplicate => repeated[0] += 1,
                    // Kept, and applied when the donor's ported_out comes.
                    store::Outcome::Pending => pending += 1,
                    store::Outcome::Rejected(r) if r.code == domain::RejectionCode::Conflict => repeated[1] += 1,
                    store::Outcome::Rejected(_) => pool.push((c, e)),
                }
            }
        }
        let probes: Vec<Day> =
            (0..6).map(|_| Day::parse("2016-01-01").unwrap().plus_days(rng.below(4_000) as i32)).collect();
        compare(&store, &probes).await;
        if round == 30 {
            // Ranges arrive after numbers under them have histories.
            for s in [&store, &plain] {
                carrier(s, "D", "+8613700", Some("2019-01-01")).await;
                carrier(s, "E", "+4915", Some("2018-05-01")).await;
            }
            compare(&store, &probes).await;
        }
    }
    assert!(pending > 3, "ports arrived recipient first: {pending}");
    assert!(
        (accepted + pending) * 10 > total * 6,
        "most of the lives got in, or wait for a port's other half: {accepted} and {pending} of {total}"
    );
    assert!(repeated[0] > 3 && repeated[1] > 3, "duplicates and conflicts were offered: {repeated:?}");
    let probes: Vec<Day> = (0..60).map(|i| Day::parse("2016-01-01").unwrap().plus_days(i * 70)).collect();
    compare(&store, &probes).await;
    // After a restart, the index is built from the tables.
    drop(store);
    let store = db.open_with(clock.clone());
    let with_index = compare(&store, &probes).await;
    // A store opened without an index (the CLI's) answers from the tables what the index answered.
    drop(store);
    let store = db.open_without_index(clock);
    assert_eq!(store.index_stats().0, 0);
    assert_eq!(compare(&store, &probes).await, with_index);
}

/// A commit that happened though its caller heard it fail (a PostgreSQL connection lost during COMMIT):
/// the carrier re-sends and hears "duplicate", so the event counts as acknowledged, and the index must
/// know it as the tables do — for checks, and for the writer, which trusts the index's "no history".
async fn a_commit_whose_reply_is_lost_reaches_the_index(db: TestDb) {
    let clock = std::sync::Arc::new(domain::FixedClock::at_day(Day::parse("2026-06-30").unwrap()));
    let lose = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut config = store::StoreConfig::new(db.url.clone(), store::testing::test_hash_key(), clock);
    config.lose_commit_reply = Some(lose.clone());
    let store = Store::open(config).unwrap();
    let a = carrier(&store, "A", "+86138", Some("2020-01-01")).await;
    let number = PhoneNumber::parse(NUMBERS[0]).unwrap();
    let ev = |id: &str, kind, date| NewEvent {
        event_id: domain::EventId::parse(id).unwrap(),
        number,
        kind,
        date: Day::parse(date).unwrap(),
        kyc: None,
        recipient: None,
    };
    let activated = ev("a-1", EventKind::Activated, "2024-01-10");
    lose.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(store.report_events(a.clone(), vec![activated.clone()]).await.is_err(), "the caller hears a failure");
    assert!(!lose.load(std::sync::atomic::Ordering::SeqCst), "the fault was used");
    assert_eq!(store.report_events(a.clone(), vec![activated]).await.unwrap(), vec![store::Outcome::Duplicate]);
    let probes: Vec<Day> = (0..12).map(|i| Day::parse("2019-01-01").unwrap().plus_days(i * 200)).collect();
    compare(&store, &probes).await;
    // A second activation of a number in service is impossible (R3): known only from its history.
    let again = store.report_events(a.clone(), vec![ev("a-2", EventKind::Activated, "2024-03-01")]).await.unwrap();
    assert!(
        matches!(&again[..], [store::Outcome::Rejected(r)] if r.code == domain::RejectionCode::StateConflict),
        "{again:?}"
    );
    // The same after a restart, whose index is built from the tables.
    drop(store);
    let (store, _) = db.open("2026-06-30");
    compare(&store, &probes).await;
}

/// Two servers on one database: the second's index was built before the first wrote an event, so it
/// must not take the index's "no history" for that number when it validates its own events.
async fn events_of_another_server_on_the_database_are_read_from_the_tables(db: TestDb) {
    let (first, clock) = db.open("2026-06-30");
    let a = carrier(&first, "A", "+86138", Some("2020-01-01")).await;
    let ev = |id: &str, kind, date| NewEvent {
        event_id: domain::EventId::parse(id).unwrap(),
        number: PhoneNumber::parse(NUMBERS[1]).unwrap(),
        kind,
        date: Day::parse(date).unwrap(),
        kyc: None,
        recipient: None,
    };
    // The second server's own events first: its stamp on the database, then the first server's.
    let second = db.open_with(clock);
    let other = ev("b-1", EventKind::Activated, "2023-05-01");
    let other = NewEvent { number: PhoneNumber::parse(NUMBERS[0]).unwrap(), ..other };
    assert_eq!(second.report_events(a.clone(), vec![other]).await.unwrap(), vec![store::Outcome::Accepted]);
    let activated = ev("a-1", EventKind::Activated, "2024-01-10");
    assert_eq!(first.report_events(a.clone(), vec![activated]).await.unwrap(), vec![store::Outcome::Accepted]);
    // A second activation of a number in service is impossible (R3): the second server learns of the
    // first activation only from the tables.
    let again = second.report_events(a.clone(), vec![ev("a-2", EventKind::Activated, "2024-03-01")]).await.unwrap();
    assert!(
        matches!(&again[..], [store::Outcome::Rejected(r)] if r.code == domain::RejectionCode::StateConflict),
        "{again:?}"
    );
    // Valid events still go in.
    let ended = second.report_events(a, vec![ev("a-3", EventKind::Disconnected, "2024-04-01")]).await.unwrap();
    assert_eq!(ended, vec![store::Outcome::Accepted]);
}

/// Three servers on one database, each event reported through one of them at random: after each
/// round, every server that has reached the position the last write answered with answers as the
/// tables do, a range added through one reaches the others' answers, and each validates its events
/// against the others' (accepting exactly what one server alone accepts).
async fn servers_on_one_database_follow_each_others_changes(db: TestDb) {
    let (first, clock) = db.open("2026-06-30");
    let servers = [first, db.open_with(clock.clone()), db.open_with(clock.clone())];
    let carriers = [
        carrier(&servers[0], "A", "+86138", Some("2020-01-01")).await,
        carrier(&servers[1], "B", "+861380014", Some("2021-03-01")).await,
        carrier(&servers[2], "C", "+1", Some("2022-07-01")).await,
    ];
    let alone_db = TestDb::get(db.backend).expect("a second database on this backend");
    let alone = alone_db.open_with(clock.clone());
    let alone_carriers = three_carriers(&alone).await;
    let mut rng = Rng(0x5eed_f011);
    let mut events = Vec::new();
    for (i, n) in NUMBERS.iter().enumerate() {
        life(&mut rng, n, i % 3, 90, &mut events);
    }
    let probes: Vec<Day> = ["2019-06-01", "2021-01-01", "2022-08-01", "2024-01-01", "2025-06-01"]
        .iter()
        .map(|d| Day::parse(d).unwrap())
        .collect();
    let wait = std::time::Duration::from_secs(10);
    let mut accepted = 0;
    for (round, part) in events.chunks(7).enumerate() {
        for (who, e) in part {
            let through = &servers[rng.below(3) as usize];
            let outcome = through.report_events(carriers[*who].clone(), vec![e.clone()]).await.unwrap();
            let expected = alone.report_events(alone_carriers[*who].clone(), vec![e.clone()]).await.unwrap();
            assert_eq!(format!("{outcome:?}"), format!("{expected:?}"), "{e:?}");
            accepted += usize::from(outcome == [store::Outcome::Accepted]);
        }
        if round == 2 {
            // A range added through one server moves every server's answers for its numbers.
            carrier(&servers[1], "D", "+49151", Some("2019-01-01")).await;
        }
        let position = servers.iter().map(Store::index_change_seq).max().unwrap();
        for s in &servers {
            assert!(s.wait_for_position(position, wait).await, "a server did not reach position {position}");
        }
        // Each server's answers are its index's; `compare` holds them to the tables'.
        let mut answers = Vec::new();
        for s in &servers {
            answers.push(compare(s, &probes).await);
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "round {round}: servers answer differently");
    }
    // As one server alone accepts them (above); enough that most rounds change answers.
    assert!(accepted >= 20, "{accepted} of {} events accepted", events.len());
}

/// A server whose index is behind the changes still logged (another dropped those it had not read)
/// reads every number again before it answers from the position it is asked for.
async fn a_server_behind_the_changes_still_logged_reads_every_number(db: TestDb) {
    let (first, clock) = db.open("2026-06-30");
    let second = db.open_with(clock);
    let a = carrier(&first, "A", "+86138", Some("2020-01-01")).await;
    let ev = |id: &str, n: usize, kind, date| NewEvent {
        event_id: domain::EventId::parse(id).unwrap(),
        number: PhoneNumber::parse(NUMBERS[n]).unwrap(),
        kind,
        date: Day::parse(date).unwrap(),
        kyc: None,
        recipient: None,
    };
    first.report_events(a.clone(), vec![ev("a-1", 0, EventKind::Activated, "2023-01-01")]).await.unwrap();
    let probes = [Day::parse("2022-01-01").unwrap(), Day::parse("2024-06-01").unwrap()];
    let position = first.index_change_seq();
    assert!(second.wait_for_position(position, std::time::Duration::from_secs(10)).await);
    // The changes the second server has read, and the next one, dropped as if a snapshot had covered
    // them and the second server had not been heard from.
    db.exec(
        "DELETE FROM index_changes; \
         UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'index_seq') + 1 WHERE key = 'index_changes_pruned_through'",
    );
    let later = vec![
        ev("a-2", 0, EventKind::Disconnected, "2024-01-01"),
        ev("a-3", 0, EventKind::Activated, "2024-05-01"),
        ev("a-4", 1, EventKind::Activated, "2024-02-01"),
    ];
    first.report_events(a, later).await.unwrap();
    let position = first.index_change_seq();
    assert!(second.wait_for_position(position, std::time::Duration::from_secs(10)).await);
    assert_eq!(compare(&second, &probes).await, compare(&first, &probes).await);
    let n = PhoneNumber::parse(NUMBERS[0]).unwrap();
    assert_eq!(second.answer_many(&[(n, Day::parse("2023-06-01").unwrap())]), vec![Ok(domain::Answer::Yes)]);
}

/// A server on PostgreSQL keeps its snapshot in the spool directory, which no upload may have made
/// yet: writing the snapshot makes it (before, every snapshot of such a server failed).
async fn a_snapshot_goes_into_a_directory_made_for_it(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numlink-spool").join("index.snapshot");
    let clock = std::sync::Arc::new(domain::FixedClock::at_day(Day::parse("2026-06-30").unwrap()));
    let store = db.open_configured(clock, |c| c.index_snapshot = Some(path.clone()));
    carrier(&store, "A", "+86138", Some("2020-01-01")).await;
    let written = store.write_index_snapshot().await.unwrap().expect("a snapshot");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), written.bytes);
}

/// Reports each event by its reporter in order (most are accepted: lives are valid in order, though
/// a port's event id may repeat another's). Returns how many were accepted.
async fn report_in_order(store: &Store, carriers: &[Participant], events: &[(usize, NewEvent)]) -> usize {
    let mut accepted = 0;
    for (who, e) in events {
        let outcome = store.report_events(carriers[*who].clone(), vec![e.clone()]).await.unwrap();
        accepted += usize::from(outcome == [store::Outcome::Accepted]);
    }
    accepted
}

/// A server starts from the index's snapshot and the changes logged after it, or, when the snapshot
/// is missing, corrupt, cut short, older than the changes still logged, of another database or over
/// other ranges, from the tables: whichever, the index answers as the tables do. Half of every
/// number's life is reported after the snapshot was taken, by a server that then dies without
/// another.
async fn a_snapshot_of_the_index_never_answers_what_the_tables_would_not(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numlink.index");
    let clock = std::sync::Arc::new(domain::FixedClock::at_day(Day::parse("2026-06-30").unwrap()));
    let open = |path: &std::path::Path| {
        let mut config = store::StoreConfig::new(db.url.clone(), store::testing::test_hash_key(), clock.clone());
        config.index_snapshot = Some(path.to_path_buf());
        Store::open(config).unwrap()
    };
    let store = open(&path);
    assert_eq!(store.index_origin(), store::IndexOrigin::Scan { why: Some("there is none yet".into()) });
    let carriers = three_carriers(&store).await;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for n in NUMBERS.iter().filter(|n| n.starts_with("+86138") || n.starts_with("+1")) {
        let (first, aging) = if n.starts_with("+861380014") {
            (1, 90)
        } else if n.starts_with("+1") {
            (2, 45)
        } else {
            (0, 90)
        };
        let mut life_events = Vec::new();
        life(&mut rng, n, first, aging, &mut life_events);
        let half = life_events.len() / 2;
        after.extend(life_events.split_off(half));
        before.extend(life_events);
    }
    let probes: Vec<Day> = (0..40).map(|i| Day::parse("2017-01-01").unwrap().plus_days(i * 90)).collect();
    assert!(report_in_order(&store, &carriers, &before).await * 10 > before.len() * 6);
    let at_snapshot = compare(&store, &probes).await;
    let written = store.write_index_snapshot().await.unwrap().expect("a snapshot");
    assert!(written.seq > 0 && written.bytes > 0, "{written:?}");
    assert!(store.write_index_snapshot().await.unwrap().is_none(), "nothing changed since");
    assert!(report_in_order(&store, &carriers, &after).await * 10 > after.len() * 6);
    let now = compare(&store, &probes).await;
    assert_ne!(now, at_snapshot, "the events after the snapshot change answers");
    // The server dies: no snapshot at shutdown.
    drop(store);

    let store = open(&path);
    match store.index_origin() {
        store::IndexOrigin::Snapshot { seq, caught_up } => {
            assert_eq!(seq, written.seq);
            assert!(caught_up >= 4, "the numbers changed after the snapshot were read again: {caught_up}");
        }
        other => panic!("the snapshot was not used: {other:?}"),
    }
    assert_eq!(compare(&store, &probes).await, now);
    let taken = store.write_index_snapshot().await.unwrap().expect("the changes caught up are written");
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, taken.bytes);

    let why = |store: &Store| match store.index_origin() {
        store::IndexOrigin::Scan { why: Some(why) } => why,
        other => panic!("a bad snapshot was used: {other:?}"),
    };
    // One byte of a cell changed: the checksum tells.
    let mut corrupt = bytes.clone();
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0x40;
    std::fs::write(&path, &corrupt).unwrap();
    let store = open(&path);
    assert!(why(&store).contains("checksum"), "{:?}", store.index_origin());
    assert_eq!(compare(&store, &probes).await, now);
    drop(store);
    // Cut short anywhere.
    for keep in [0, 10, 30, bytes.len() / 3, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let store = open(&path);
        assert!(why(&store).contains("cut short"), "{keep}: {:?}", store.index_origin());
        assert_eq!(compare(&store, &probes).await, now);
        drop(store);
    }
    // Older than the changes still logged: a later snapshot dropped those after it.
    std::fs::write(&path, &bytes).unwrap();
    let store = open(&path);
    assert!(matches!(store.index_origin(), store::IndexOrigin::Snapshot { caught_up: 0, .. }));
    let late = NewEvent {
        event_id: domain::EventId::parse("late-1").unwrap(),
        number: PhoneNumber::parse("+8613800000777").unwrap(),
        kind: EventKind::Disconnected,
        date: Day::parse("2025-01-02").unwrap(),
        kyc: None,
        recipient: None,
    };
    assert_eq!(store.report_events(carriers[0].clone(), vec![late]).await.unwrap(), vec![store::Outcome::Accepted]);
    // The servers before this one recorded how far they had read at their snapshots, which keeps the
    // changes after those for an hour; they are long gone.
    db.exec("DELETE FROM index_followers");
    store.write_index_snapshot().await.unwrap().expect("a newer snapshot");
    let now = compare(&store, &probes).await;
    drop(store);
    std::fs::write(&path, &bytes).unwrap();
    let store = open(&path);
    assert!(why(&store).contains("no longer logged"), "{:?}", store.index_origin());
    assert_eq!(compare(&store, &probes).await, now);
    store.write_index_snapshot().await.unwrap().expect("a snapshot of the scan");
    // Ranges that changed after it.
    carrier(&store, "E", "+4915", Some("2018-05-01")).await;
    let now = compare(&store, &probes).await;
    drop(store);
    let store = open(&path);
    assert!(why(&store).contains("ranges"), "{:?}", store.index_origin());
    assert_eq!(compare(&store, &probes).await, now);
    drop(store);
    // Another database's snapshot.
    let other = TestDb::get(db.backend).unwrap();
    let other_path = dir.path().join("other.index");
    let mut config = store::StoreConfig::new(other.url.clone(), store::testing::test_hash_key(), clock.clone());
    config.index_snapshot = Some(other_path.clone());
    let other_store = Store::open(config).unwrap();
    carrier(&other_store, "A", "+86138", Some("2020-01-01")).await;
    drop(other_store);
    std::fs::copy(&path, &other_path).unwrap();
    let mut config = store::StoreConfig::new(other.url.clone(), store::testing::test_hash_key(), clock.clone());
    config.index_snapshot = Some(other_path);
    let other_store = Store::open(config).unwrap();
    assert!(why(&other_store).contains("another database"), "{:?}", other_store.index_origin());
}
