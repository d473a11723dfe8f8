use domain::answer::NoDataReason;
use domain::{Answer, Day, EventKind, PhoneNumber, Prefix, RejectionCode};
use store::testing::TestDb;
use store::{
    ChunkRow, JobKind, JobState, NewEvent, NewParticipant, Outcome, Participant, Role, RowData, Store, backend_tests,
};

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

fn num(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

async fn carrier(store: &Store, name: &str, prefix: &str) -> Participant {
    let (p, _) = store
        .add_participant(NewParticipant {
            role: Role::Carrier,
            name: name.into(),
            prefixes: vec![Prefix::parse(prefix).unwrap()],
            reporting_since: Some(day("2020-01-01")),
        })
        .await
        .unwrap();
    p
}

async fn institution(store: &Store) -> (Participant, String) {
    let (p, key) = store
        .add_participant(NewParticipant {
            role: Role::Institution,
            name: "Bank".into(),
            prefixes: vec![],
            reporting_since: None,
        })
        .await
        .unwrap();
    (p, key.expose().to_string())
}

fn cp(next_offset: u64, next_line: u64, finished: bool) -> store::Checkpoint {
    store::Checkpoint { next_offset, next_line, finished, result_bytes: 0, rows_total: None }
}

fn ev(id: &str, n: &str, kind: EventKind, date: &str) -> NewEvent {
    NewEvent {
        event_id: domain::EventId::parse(id).unwrap(),
        number: num(n),
        kind,
        date: day(date),
        kyc: None,
        recipient: None,
    }
}

backend_tests!(
    a_panicking_command_is_answered_and_rolled_back,
    participants_and_keys,
    events_are_validated_deduplicated_and_answered,
    checks_are_audited_in_a_tamper_evident_chain,
    a_batch_of_checks_without_its_record_breaks_the_chain,
    accepted_events_are_audited_by_the_call,
    a_large_batch_meets_keys_held_by_other_numbers,
    lookups_stay_exact_at_every_step_of_the_compaction,
    opening_twice_migrates_once,
    a_schema_newer_than_the_binary_is_refused,
    job_chunks_commit_with_their_checkpoint,
    ports_accepted_before_they_took_both_sides_stand,
    a_binding_rebound_before_staleness_was_read_stays_fresh,
    times_of_a_migration_15_database_keep_their_meaning,
    the_check_log_is_dropped_after_its_retention_period,
    a_carrier_may_hold_only_so_many_pending_ports,
    console_sessions_end_when_idle_closed_or_their_key_revoked,
    a_bindings_notifications_count_alike_filed_or_waiting,
    notifications_made_before_they_were_filed_by_binding_still_count,
    deliveries_made_before_they_were_keyed_by_endpoint_are_still_due,
    a_busy_writer_files_notifications_once_too_many_wait,
);

async fn console_sessions_end_when_idle_closed_or_their_key_revoked(db: TestDb) {
    let (store, clock) = db.open("2025-06-30");
    let (bank, key) = institution(&store).await;
    let idle = 1800;
    assert!(store.open_console_session("nlk_not_a_key".into(), idle).await.unwrap().is_none());
    let (token, who) = store.open_console_session(key.clone(), idle).await.unwrap().unwrap();
    assert!(token.starts_with("nlc_") && who.id == bank.id);
    let session = |t: &str| store.console_session(t.to_string(), idle);
    assert_eq!(session(&token).await.unwrap().map(|p| p.id), Some(bank.id.clone()));
    assert_eq!(session("nlc_forged").await.unwrap(), None);
    assert_eq!(session(&key).await.unwrap(), None, "an API key is not a session");
    // Idle: used 29 minutes on, then again 29 minutes after that (its use was written down), then
    // left 31 minutes.
    let advance =
        |secs: i64| clock.set(domain::Clock::now(&*clock).checked_add(jiff::SignedDuration::from_secs(secs)).unwrap());
    advance(29 * 60);
    assert!(session(&token).await.unwrap().is_some());
    advance(29 * 60);
    assert!(session(&token).await.unwrap().is_some(), "each use keeps it open");
    advance(31 * 60);
    assert_eq!(session(&token).await.unwrap(), None, "30 minutes idle end it");
    // Closed by signing out.
    let (token, _) = store.open_console_session(key.clone(), idle).await.unwrap().unwrap();
    assert!(store.close_console_session(token.clone()).await.unwrap());
    assert_eq!(session(&token).await.unwrap(), None);
    assert!(!store.close_console_session(token).await.unwrap());
    // A revoked key ends its sessions at their next request.
    let (token, _) = store.open_console_session(key, idle).await.unwrap().unwrap();
    assert_eq!(store.revoke_keys(&bank.id).await.unwrap(), 1);
    assert_eq!(session(&token).await.unwrap(), None);
    // Signing in and out is in the audit chain, under the participant.
    let tail = store.audit_tail(10).await.unwrap();
    assert!(tail.iter().any(|r| r.action == "console.signed_in" && r.actor == bank.id.as_str()));
    assert!(tail.iter().any(|r| r.action == "console.signed_out"));
}

async fn participants_and_keys(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let (bank, key) = institution(&store).await;
    assert!(key.starts_with("nlk_"));
    assert_eq!(store.authenticate(&key).await.unwrap().map(|p| p.id), Some(bank.id.clone()));
    assert_eq!(store.authenticate("nlk_not_a_key").await.unwrap(), None);

    let c = carrier(&store, "Carrier A", "+86138").await;
    assert_eq!(c.prefixes, vec![Prefix::parse("+86138").unwrap()]);
    // A prefix belongs to one carrier.
    let err = store
        .add_participant(NewParticipant {
            role: Role::Carrier,
            name: "Carrier B".into(),
            prefixes: vec![Prefix::parse("+86138").unwrap()],
            reporting_since: Some(day("2020-01-01")),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already belongs"), "{err}");
    // Only carriers have prefixes.
    assert!(
        store
            .add_participant(NewParticipant {
                role: Role::Institution,
                name: "X".into(),
                prefixes: vec![Prefix::parse("+1").unwrap()],
                reporting_since: None
            })
            .await
            .is_err()
    );

    let listed = store.list_participants().await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec![bank.id.as_str(), c.id.as_str()]);

    // Rotation: the new key works, the old one does not.
    let new_key = store.rotate_key(&bank.id).await.unwrap();
    assert_eq!(store.authenticate(&key).await.unwrap(), None);
    assert!(store.authenticate(new_key.expose()).await.unwrap().is_some());
    // Revocation.
    assert_eq!(store.revoke_keys(&bank.id).await.unwrap(), 1);
    assert_eq!(store.authenticate(new_key.expose()).await.unwrap(), None);
}

async fn events_are_validated_deduplicated_and_answered(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let a = carrier(&store, "A", "+86138").await;
    let b = carrier(&store, "B", "+86139").await;
    let (bank, _) = institution(&store).await;
    let n = "+8613800138000";
    let out = store
        .report_events(
            a.clone(),
            vec![
                ev("e1", n, EventKind::Disconnected, "2024-01-10"),
                ev("e2", n, EventKind::Activated, "2024-02-01"), // too soon for +86 (90 days)
                ev("e3", n, EventKind::Activated, "2024-04-10"),
                ev("e4", "+8613900000001", EventKind::Disconnected, "2024-01-10"), // B's range
                ev("e5", n, EventKind::Disconnected, "2026-01-01"),                // after today
            ],
        )
        .await
        .unwrap();
    let codes: Vec<Option<RejectionCode>> = out
        .iter()
        .map(|o| match o {
            Outcome::Rejected(r) => Some(r.code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(RejectionCode::AgingViolation),
            None,
            Some(RejectionCode::NotNumberHolder),
            Some(RejectionCode::OutOfRange)
        ]
    );
    // Same id, same payload: duplicate. Same id, other payload: conflict. Ids are per carrier.
    let again = store
        .report_events(
            a.clone(),
            vec![ev("e1", n, EventKind::Disconnected, "2024-01-10"), ev("e3", n, EventKind::Activated, "2024-04-11")],
        )
        .await
        .unwrap();
    assert_eq!(again[0], Outcome::Duplicate);
    assert!(matches!(&again[1], Outcome::Rejected(r) if r.code == RejectionCode::Conflict));
    let by_b =
        store.report_events(b, vec![ev("e1", "+8613900000001", EventKind::Disconnected, "2024-01-10")]).await.unwrap();
    assert_eq!(by_b, vec![Outcome::Accepted]);

    let answers = store
        .check(
            bank,
            vec![
                (num(n), day("2023-12-01")),                // disconnected after: yes
                (num(n), day("2024-05-01")),                // after the reissue: no
                (num(n), day("2019-01-01")),                // before coverage, but a disconnection after: yes
                (num("+8613800999999"), day("2019-01-01")), // before coverage: no data
                (num("+8613800999999"), day("2021-01-01")), // covered, no events: no
                (num("+447700900123"), day("2021-01-01")),  // nobody's range
                (num(n), day("2025-07-01")),                // after today
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Ok(Answer::Yes),
            Ok(Answer::No),
            Ok(Answer::Yes),
            Ok(Answer::NoData(NoDataReason::BeforeCoverage)),
            Ok(Answer::No),
            Ok(Answer::NoData(NoDataReason::UnknownNumber)),
            Err(domain::answer::DateAfterToday),
        ]
    );
}

async fn checks_are_audited_in_a_tamper_evident_chain(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let (bank, _) = institution(&store).await;
    let n = num("+8613800138000");
    store.check(bank.clone(), vec![(n, day("2024-01-01")), (n, day("2026-01-01"))]).await.unwrap();
    // One chained record for the call, naming the count and the digest of its entries.
    let tail = store.audit_tail(10).await.unwrap();
    let last = tail.last().unwrap();
    assert_eq!((last.actor.as_str(), last.action.as_str(), last.subject.as_ref()), (bank.id.as_str(), "checks", None));
    assert!(last.detail.starts_with("count=2;sha256="), "{}", last.detail);
    // Each check is in it: who, the date, the answer, and the number as a keyed hash only.
    let logged = store.logged_checks(1).await.unwrap();
    assert_eq!(
        logged.iter().map(|c| (c.seq, c.actor.as_str(), c.date, c.answer.as_str())).collect::<Vec<_>>(),
        vec![
            (last.seq, bank.id.as_str(), day("2024-01-01"), "no_data"),
            (last.seq, bank.id.as_str(), day("2026-01-01"), "OUT_OF_RANGE")
        ]
    );
    assert_eq!(logged[0].tag, logged[1].tag, "the same number, the same tag");
    assert!(!logged[0].tag.windows(4).any(|w| w == b"8613"), "the number is stored only as a keyed hash");
    assert_eq!(store.verify_audit().await.unwrap().first_broken, None);

    // Tamper behind the store's back: a changed check in a batch, then a changed record; each breaks
    // the chain where it is.
    let first_seq = tail[0].seq;
    // The last byte of the first entry (the answer): 'd' (no_data) made 'n' (no).
    tamper(&db, &set_entry_byte(&db, "check_batches", last.seq, 20, b'n'));
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(last.seq));
    assert_eq!(store.logged_checks(1).await.unwrap()[0].answer.as_str(), "no", "the tampering took");
    tamper(&db, &format!("UPDATE audit SET detail = 'forged' WHERE seq = {first_seq}"));
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(first_seq));
}

async fn accepted_events_are_audited_by_the_call(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let c = carrier(&store, "Carrier A", "+86138").await;
    let events = vec![
        ev("a1", "+8613800138000", EventKind::Activated, "2024-03-01"),
        ev("a2", "+8613800138001", EventKind::Activated, "2024-03-01"),
        // Rejected (after today): not in the record.
        ev("a3", "+8613800138002", EventKind::Activated, "2026-03-01"),
    ];
    store.report_events(c.clone(), events.clone()).await.unwrap();
    let last = store.audit_tail(1).await.unwrap().pop().unwrap();
    assert_eq!((last.actor.as_str(), last.action.as_str(), last.subject.as_ref()), (c.id.as_str(), "events", None));
    assert!(last.detail.starts_with("accepted=2;sha256="), "{}", last.detail);
    // A call that accepts nothing (both duplicates) writes no record.
    store.report_events(c.clone(), events[..2].to_vec()).await.unwrap();
    assert_eq!(store.audit_tail(1).await.unwrap().pop().unwrap().seq, last.seq);
    assert_eq!(store.verify_audit().await.unwrap().first_broken, None);

    // A batch with no record of its own, added behind the log's back.
    tamper(
        &db,
        &format!(
            "INSERT INTO event_batches (seq, entries) SELECT seq + 1000, entries FROM event_batches WHERE seq = {}",
            last.seq
        ),
    );
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(last.seq + 1000));
    tamper(&db, &format!("DELETE FROM event_batches WHERE seq = {}", last.seq + 1000));
    assert_eq!(store.verify_audit().await.unwrap().first_broken, None);
    // The first event's type byte (offset 32) made a disconnection's: the record's digest no longer holds.
    tamper(&db, &set_entry_byte(&db, "event_batches", last.seq, 32, 3));
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(last.seq));
}

/// A batch of events is first written many rows to a statement, which a key another number holds fails
/// as a whole; each event's outcome must still be its own.
async fn a_large_batch_meets_keys_held_by_other_numbers(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let c = carrier(&store, "Carrier A", "+86138").await;
    let (bank, _) = institution(&store).await;
    let number = |i: usize| format!("+86138002{i:05}");
    let rejected = |o: &Outcome, code| matches!(o, Outcome::Rejected(r) if r.code == code);
    // 450 numbers' first events (lists of 200 and a remainder) and two second events, none of whose
    // inserts meets a held key: with nothing to fall back on, the events read must include those not
    // yet written. In number order: line 80 reuses line 60's key, and is dated after today too (the
    // key's conflict is what is said); line 450 reissues line 100's number too soon after it, line 451
    // line 101's in time.
    let mut events: Vec<NewEvent> =
        (0..450).map(|i| ev(&format!("b{i}"), &number(i), EventKind::Disconnected, "2024-06-01")).collect();
    events[80].event_id = domain::EventId::parse("b60").unwrap();
    events[80].date = day("2025-07-01");
    events.push(ev("soon", &number(100), EventKind::Activated, "2024-06-15"));
    events.push(ev("later", &number(101), EventKind::Activated, "2024-09-10"));
    let expected = |i: usize, o: &Outcome, again: bool| match i {
        80 => assert!(rejected(o, RejectionCode::Conflict), "line {i}: {o:?}"),
        450 => assert!(rejected(o, RejectionCode::AgingViolation), "line {i}: {o:?}"),
        _ if again => assert_eq!(o, &Outcome::Duplicate, "line {i}"),
        _ => assert_eq!(o, &Outcome::Accepted, "line {i}"),
    };
    let out = store.report_events(c.clone(), events.clone()).await.unwrap();
    out.iter().enumerate().for_each(|(i, o)| expected(i, o, false));
    let last = store.audit_tail(1).await.unwrap().pop().unwrap();
    assert!(last.detail.starts_with("accepted=450;sha256="), "{}", last.detail);
    // Sent again, every line is what it was: a duplicate, or the same rejection.
    let again = store.report_events(c.clone(), events).await.unwrap();
    again.iter().enumerate().for_each(|(i, o)| expected(i, o, true));

    // Keys another number holds, stored or earlier in the same batch: line 460 reuses line 0's, lines
    // 480 and 490 share a new one; line 510 repeats line 470. The bank has bound line 600's number:
    // the batch, applied twice over, notifies it once.
    let bound = store
        .register_bindings(
            bank.clone(),
            vec![store::NewBinding {
                account_ref: domain::AccountRef::parse("acct-600").unwrap(),
                number: num(&number(600)),
                bound_on: day("2024-01-01"),
            }],
        )
        .await
        .unwrap();
    assert!(bound[0].is_ok(), "{bound:?}");
    let mut events: Vec<NewEvent> =
        (450..700).map(|i| ev(&format!("b{i}"), &number(i), EventKind::Disconnected, "2024-06-01")).collect();
    events[10].event_id = domain::EventId::parse("b0").unwrap();
    events[30].event_id = domain::EventId::parse("shared").unwrap();
    events[40].event_id = domain::EventId::parse("shared").unwrap();
    events[60] = events[20].clone();
    let out = store.report_events(c.clone(), events.clone()).await.unwrap();
    for (i, o) in out.iter().enumerate() {
        match i {
            10 | 40 => assert!(rejected(o, RejectionCode::Conflict), "line {}: {o:?}", i + 450),
            60 => assert_eq!(o, &Outcome::Duplicate, "line {}", i + 450),
            _ => assert_eq!(o, &Outcome::Accepted, "line {}", i + 450),
        }
    }
    let notified = store.notifications(bank.seq, 0, 100).await.unwrap();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        (notified[0].account_ref.as_deref(), notified[0].kind),
        (Some("acct-600"), store::NotificationType::Disconnected)
    );
    assert_eq!(store.verify_audit().await.unwrap().first_broken, None);
    // What was accepted is what checks see: the numbers of rejected lines have no event.
    let asked: Vec<(PhoneNumber, Day)> = (0..700).map(|i| (num(&number(i)), day("2024-05-01"))).collect();
    let answers = store.check(bank, asked).await.unwrap();
    for (i, a) in answers.iter().enumerate() {
        let expected = if matches!(i, 80 | 460 | 490 | 510) { Answer::No } else { Answer::Yes };
        assert_eq!(a, &Ok(expected), "number {i}");
    }
}

async fn a_batch_of_checks_without_its_record_breaks_the_chain(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let (bank, _) = institution(&store).await;
    store.check(bank.clone(), vec![(num("+8613800138000"), day("2024-01-01"))]).await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap().first_broken, None);
    tamper(&db, "INSERT INTO check_batches (seq, entries) SELECT seq + 1000, entries FROM check_batches");
    let seq = store.logged_checks(1).await.unwrap()[0].seq;
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(seq + 1000));
}

async fn lookups_stay_exact_at_every_step_of_the_compaction(db: TestDb) {
    let store = db.open_without_idle_upkeep(std::sync::Arc::new(domain::FixedClock::at_day(day("2025-06-30"))));
    let c = carrier(&store, "Carrier A", "+86138").await;
    let (bank, _) = institution(&store).await;
    let numbers = ["+8613800138000", "+8613800138001", "+8613800138002"].map(num);
    let events = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| ev(&format!("a{i}"), &n.to_string(), EventKind::Activated, "2024-03-01"))
        .collect();
    store.report_events(c, events).await.unwrap();
    // Two calls: [0, 1, 2] and [2, 2]; the second names one number twice.
    store.check(bank.clone(), numbers.iter().map(|&n| (n, day("2024-06-01"))).collect()).await.unwrap();
    store.check(bank.clone(), vec![(numbers[2], day("2024-06-01")), (numbers[2], day("2024-07-01"))]).await.unwrap();
    let since = 0;
    let seen = |store: Store| async move {
        let mut out = Vec::new();
        for n in numbers {
            let mark = store.tenure_mark(n).await.unwrap();
            out.push(store.lookups(n, mark, since, 100).await.unwrap().expect("the same tenure").len());
        }
        out
    };
    // One lookup per call that asked about the number, before the move, after every one-check step (some
    // stopping inside a batch), and after.
    let mut steps = 0;
    loop {
        assert_eq!(seen(store.clone()).await, vec![1, 1, 2], "after {steps} steps");
        if !store.compact_lookups_step(1).await.unwrap() {
            break;
        }
        steps += 1;
    }
    assert_eq!(steps, 5, "one step per check");
    store.check(bank, vec![(numbers[0], day("2024-06-01"))]).await.unwrap();
    assert_eq!(seen(store.clone()).await, vec![2, 1, 2]);
}

/// Just enough of a raw SQLite handle to tamper with a file from outside the store.
/// Runs `sql` on the test database behind the store's back.
fn tamper(db: &TestDb, sql: &str) {
    match &db.url {
        store::DbUrl::Sqlite(path) => rusqlite_like::exec(&rusqlite_like::open(path), sql),
        store::DbUrl::Postgres(url) => store::testing::pg_batch(url, sql),
    }
}

/// SQL that sets byte `at` (from 0) of `table`'s `entries` in row `seq` to `value`, in the test
/// database's dialect.
fn set_entry_byte(db: &TestDb, table: &str, seq: i64, at: usize, value: u8) -> String {
    match db.url {
        store::DbUrl::Sqlite(_) => format!(
            "UPDATE {table} SET entries = CAST(substr(entries, 1, {at}) || x'{value:02x}' || substr(entries, {}) AS BLOB) \
             WHERE seq = {seq}",
            at + 2
        ),
        store::DbUrl::Postgres(_) => {
            format!("UPDATE {table} SET entries = set_byte(entries, {at}, {value}) WHERE seq = {seq}")
        }
    }
}

/// One number from a query, in the test database's dialect-neutral SQL.
fn count(db: &TestDb, sql: &str) -> i64 {
    match &db.url {
        store::DbUrl::Sqlite(path) => rusqlite_like::open(path).query_row(sql, [], |r| r.get(0)).unwrap(),
        store::DbUrl::Postgres(url) => {
            let (url, sql) = (url.clone(), sql.to_string());
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.query_one(sql.as_str(), &[]).unwrap().get::<_, i64>(0)
            })
            .join()
            .unwrap()
        }
    }
}

mod rusqlite_like {
    pub fn open(path: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(path).unwrap()
    }
    pub fn exec(c: &rusqlite::Connection, sql: &str) {
        c.execute_batch(sql).unwrap();
    }
}

async fn opening_twice_migrates_once(db: TestDb) {
    let (first, clock) = db.open("2025-06-30");
    let (bank, key) = institution(&first).await;
    // A second process on the same database: migrations do not run again, data is shared.
    let second = db.open_with(clock);
    assert_eq!(second.authenticate(&key).await.unwrap().map(|p| p.id), Some(bank.id));
    let (other, _) = institution(&second).await;
    assert_eq!(first.list_participants().await.unwrap().len(), 2, "{other:?}");
    // Both writers extend one audit chain.
    first.check(other.clone(), vec![(num("+8613800138000"), day("2024-01-01"))]).await.unwrap();
    second.check(other, vec![(num("+8613800138000"), day("2024-01-01"))]).await.unwrap();
    assert_eq!(first.verify_audit().await.unwrap().first_broken, None);
}

async fn a_schema_newer_than_the_binary_is_refused(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    drop(store);
    tamper(
        &db,
        match db.url {
            store::DbUrl::Sqlite(_) => "PRAGMA user_version = 999",
            store::DbUrl::Postgres(_) => "INSERT INTO schema_migrations (version) VALUES (999)",
        },
    );
    let config = store::StoreConfig::new(
        db.url.clone(),
        store::testing::test_hash_key(),
        std::sync::Arc::new(domain::FixedClock::at_day(day("2025-06-30"))),
    );
    let Err(err) = Store::open(config) else { panic!("a newer schema is refused") };
    assert!(err.to_string().contains("schema is version 999, newer than this numlink's"), "{err}");
}

async fn job_chunks_commit_with_their_checkpoint(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let a = carrier(&store, "A", "+86138").await;
    let job = store
        .create_job(a.clone(), JobKind::Lifecycle, "events".into(), std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(store.next_job().await.unwrap().map(|j| j.id), Some(job.id.clone()));
    let chunk = vec![
        ChunkRow {
            line: 2,
            row: Ok(RowData::Event(ev("f1", "+8613800000001", EventKind::Disconnected, "2024-01-01"))),
        },
        ChunkRow { line: 3, row: Err(domain::Rejection::new(RejectionCode::InvalidArgument, "bad row")) },
        ChunkRow {
            line: 4,
            row: Ok(RowData::Event(ev("f1", "+8613800000001", EventKind::Disconnected, "2024-01-01"))),
        },
    ];
    let j = store.apply_chunk(&job, chunk.clone(), cp(100, 5, false)).await.unwrap();
    assert_eq!(
        (j.state, j.rows_read, j.accepted, j.duplicates, j.rejected, j.byte_offset, j.line),
        (JobState::Running, 3, 1, 1, 1, 100, 5)
    );
    // A chunk read from an old checkpoint (a second runner) is not applied again.
    let j = store.apply_chunk(&job, chunk.clone(), cp(100, 5, false)).await.unwrap();
    assert_eq!((j.rows_read, j.accepted, j.duplicates), (3, 1, 1));
    let j = store.apply_chunk(&j, vec![], cp(120, 6, true)).await.unwrap();
    assert_eq!(j.state, JobState::Succeeded);
    // A finished job ignores a replayed chunk.
    let j = store.apply_chunk(&job, chunk, cp(100, 5, false)).await.unwrap();
    assert_eq!((j.state, j.rows_read), (JobState::Succeeded, 3));
    let rej = store.job_rejections(&job.id, 0, 100).await.unwrap();
    assert_eq!(rej.iter().map(|r| (r.line, r.code.as_str())).collect::<Vec<_>>(), vec![(3, "INVALID_ARGUMENT")]);
    // Jobs are visible to their owner only.
    assert!(store.job(&job.id, a.seq).await.unwrap().is_some());
    assert!(store.job(&job.id, a.seq + 1000).await.unwrap().is_none());
    assert_eq!(store.next_job().await.unwrap(), None);
}

/// A database of the numlink before a binding's staleness was read from its notifications (migration
/// 23): a binding rebound then (its flag cleared, the old number's notification left behind) stays
/// fresh after the upgrade, and one stale then stays stale.
async fn a_binding_rebound_before_staleness_was_read_stays_fresh(db: TestDb) {
    db.migrate_to(23);
    tamper(
        &db,
        &format!(
            "INSERT INTO participants (id, role, name, created_at) VALUES ('ins_a', 'institution', 'A', '2020-01-01T00:00:00Z'); \
         INSERT INTO bindings (id, institution_seq, account_ref, number_hash, bound_on, stale, created_at) \
           SELECT 'bnd_00000000000000000001', seq, 'rebound', {}, 20240101, 0, '2024-01-01T00:00:00Z' \
           FROM participants WHERE id = 'ins_a'; \
         INSERT INTO bindings (id, institution_seq, account_ref, number_hash, bound_on, stale, created_at) \
           SELECT 'bnd_00000000000000000002', seq, 'stale', {}, 20240101, 1, '2024-01-01T00:00:00Z' \
           FROM participants WHERE id = 'ins_a'; \
         INSERT INTO notifications (id, institution_seq, binding_id, account_ref, type, event_key, created_at) \
           SELECT 'ntf_00000000000000000001', seq, b.id, b.account_ref, 'number.disconnected', {}, '2024-06-01T00:00:00Z' \
           FROM participants, bindings b WHERE participants.id = 'ins_a' AND b.account_ref = 'rebound';",
            blob(&db, &[0x01]),
            blob(&db, &[0x02]),
            blob(&db, &[0xaa])
        ),
    );
    let (store, _) = db.open("2025-06-30");
    let (_, stale) = stale_bindings_of_ins_a(&store).await;
    assert_eq!(stale, vec![("rebound".to_string(), false), ("stale".to_string(), true)]);
}

/// A database of the numlink before ports took both sides (migration 9), holding a `ported_in`
/// accepted on its reporter's word alone: after the upgrade it stands as a whole port, so the
/// number's answers and serving carrier stay as they were, and the event sent again is a duplicate.
async fn ports_accepted_before_they_took_both_sides_stand(db: TestDb) {
    db.migrate_to(9);
    tamper(
        &db,
        "INSERT INTO participants (id, role, name, reporting_since, created_at) VALUES \
           ('car_a', 'carrier', 'A', 20200101, '2020-01-01T00:00:00Z'), \
           ('car_b', 'carrier', 'B', 20200101, '2020-01-01T00:00:00Z'); \
         INSERT INTO prefixes (prefix, participant_seq) SELECT '86138', seq FROM participants WHERE id = 'car_a'; \
         INSERT INTO events (carrier_seq, event_id, number, kind, day) \
           SELECT seq, 'a-1', 8613800138000, 4, 20230101 FROM participants WHERE id = 'car_a'; \
         INSERT INTO events (carrier_seq, event_id, number, kind, day) \
           SELECT seq, 'b-in', 8613800138000, 1, 20240101 FROM participants WHERE id = 'car_b'; \
         INSERT INTO numbers (number, first_event, last_end, last_activation, disconnected, serving) \
           SELECT 8613800138000, 20230101, NULL, 20230101, 0, seq FROM participants WHERE id = 'car_b';",
    );
    let (store, _) = db.open("2025-06-30");
    let n = num("+8613800138000");
    let all = store.list_participants().await.unwrap();
    let by = |id: &str| all.iter().find(|p| p.id == id).unwrap().clone();
    let (a, b) = (by("car_a"), by("car_b"));
    let (bank, _) = institution(&store).await;
    let asked = vec![(n, day("2023-06-01")), (n, day("2022-06-01"))];
    assert_eq!(store.check(bank.clone(), asked.clone()).await.unwrap(), vec![Ok(Answer::No), Ok(Answer::Yes)]);
    let events = store.events_of(n).await.unwrap();
    assert_eq!(events[1].recipient_id.as_deref(), Some("car_b"), "a whole port to its reporter: {events:?}");
    let again = NewEvent { recipient: None, ..ev("b-in", "+8613800138000", EventKind::PortedIn, "2024-01-01") };
    assert_eq!(store.report_events(b.clone(), vec![again]).await.unwrap(), vec![Outcome::Duplicate]);
    let by_a = store.report_events(a, vec![ev("a-2", "+8613800138000", EventKind::Transferred, "2024-06-01")]).await;
    assert!(matches!(&by_a.unwrap()[..], [Outcome::Rejected(r)] if r.code == RejectionCode::NotNumberHolder));
    let by_b = store.report_events(b, vec![ev("b-1", "+8613800138000", EventKind::Transferred, "2024-06-01")]).await;
    assert_eq!(by_b.unwrap(), vec![Outcome::Accepted]);
    assert_eq!(store.check(bank, asked).await.unwrap(), vec![Ok(Answer::Yes), Ok(Answer::Yes)]);
    // A portability participant could not exist before; it can now (the role's CHECK was widened).
    let p = NewParticipant { role: Role::Portability, name: "NPDB".into(), prefixes: vec![], reporting_since: None };
    assert!(store.add_participant(p).await.unwrap().0.id.starts_with("npd_"));
}

/// Checks logged 181 days ago are dropped (their entries and the lookups' index of them), a bounded
/// step at a time; those of 81 days ago stay; the chain still verifies, saying how many batches it
/// knows were dropped.
async fn the_check_log_is_dropped_after_its_retention_period(db: TestDb) {
    let (store, clock) = db.open("2025-01-01");
    let (bank, _) = institution(&store).await;
    let n = |i: usize| num(&format!("+861380013{i:04}"));
    for b in 0..3 {
        let items = (0..10).map(|i| (n(b * 10 + i), day("2024-01-01"))).collect();
        store.check(bank.clone(), items).await.unwrap();
    }
    store.compact_lookups().await.unwrap();
    let days = |d: i64| jiff::SignedDuration::from_hours(24 * d);
    let start = domain::Clock::now(clock.as_ref());
    clock.set(start + days(100));
    store.check(bank.clone(), vec![(n(99), day("2024-01-01"))]).await.unwrap();
    store.compact_lookups().await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM check_tags"), 31);
    clock.set(start + days(181));
    let before = (start + days(1)).to_string();
    let mut steps = 0;
    while store.prune_check_log(before.clone(), 7).await.unwrap() {
        steps += 1;
        assert!(steps < 100, "the pruning ends");
    }
    assert_eq!(steps, 4, "30 entries, 7 a step");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM check_batches"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM check_tags"), 1);
    assert_eq!(store.logged_checks(100).await.unwrap().len(), 1, "the newer batch stays");
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.first_broken, report.pruned_check_batches), (None, 3));
    assert!(!store.prune_check_log(before, 7).await.unwrap(), "nothing more to drop");
    let tail = store.audit_tail(20).await.unwrap();
    let pruned: Vec<&str> = tail.iter().filter(|r| r.action == "checklog.pruned").map(|r| r.detail.as_str()).collect();
    assert_eq!(pruned.len(), 1, "one chained record for the step that dropped batches: {pruned:?}");
    // What verify trusts is that record, not the watermark in `meta`: a newer batch removed behind the
    // log's back breaks the chain, whatever `meta` says.
    let newest = store.logged_checks(1).await.unwrap()[0].seq;
    drop(store);
    tamper(
        &db,
        &format!(
            "DELETE FROM check_batches WHERE seq = {newest}; UPDATE meta SET value = {newest} WHERE key = 'check_log_pruned_through'"
        ),
    );
    let store = db.open_with(clock);
    assert_eq!(store.verify_audit().await.unwrap().first_broken, Some(newest));
}

/// A carrier may hold only so many `ported_in` events pending: it cannot file claims on every number in
/// the hope of a port. One completed (or dropped) makes room for another.
async fn a_carrier_may_hold_only_so_many_pending_ports(db: TestDb) {
    let clock = std::sync::Arc::new(domain::FixedClock::at_day(day("2025-06-30")));
    let mut config = store::StoreConfig::new(db.url.clone(), store::testing::test_hash_key(), clock);
    config.pending_ports_per_carrier_max = 2;
    let store = Store::open(config).unwrap();
    let a = carrier(&store, "A", "+86138").await;
    let b = carrier(&store, "B", "+86139").await;
    let claims: Vec<NewEvent> = (0..3)
        .map(|i| ev(&format!("in{i}"), &format!("+861380013800{i}"), EventKind::PortedIn, "2025-06-01"))
        .collect();
    let got = store.report_events(b.clone(), claims.clone()).await.unwrap();
    assert_eq!(got[..2], [Outcome::Pending, Outcome::Pending]);
    assert!(matches!(&got[2], Outcome::Rejected(r) if r.code == RejectionCode::TooManyItems), "{got:?}");
    // Sent again, each pending one is pending again; the third is still refused.
    let again = store.report_events(b.clone(), claims.clone()).await.unwrap();
    assert_eq!(again[..2], [Outcome::Pending, Outcome::Pending]);
    assert!(matches!(&again[2], Outcome::Rejected(_)));
    // The donor's ported_out completes one: the third now waits.
    store.report_events(a, vec![ev("out0", "+8613800138000", EventKind::PortedOut, "2025-06-01")]).await.unwrap();
    let third = store.report_events(b, claims[2..].to_vec()).await.unwrap();
    assert_eq!(third, [Outcome::Pending]);
}

async fn a_panicking_command_is_answered_and_rolled_back(db: TestDb) {
    let (store, _) = db.open("2025-06-30");
    let before = store.verify_audit().await.unwrap();
    let err = store.write_then_panic().await.unwrap_err();
    assert!(matches!(err, store::StoreError::Panicked), "answered as a failed command, not a closed store: {err:?}");
    // The writer lives on, and nothing of the command stands.
    let c = carrier(&store, "Carrier A", "+86138").await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.records, before.records + 1, "the panicking command's record was rolled back: {report:?}");
    assert_eq!(c.name, "Carrier A");
}

/// The seq of the institution `ins_a` that an upgrade test wrote, and each of its bindings' accountRef
/// and staleness as read after the upgrade.
async fn stale_bindings_of_ins_a(store: &Store) -> (i64, Vec<(String, bool)>) {
    let seq = store.list_participants().await.unwrap().into_iter().find(|p| p.id == "ins_a").unwrap().seq;
    let list = store.bindings(seq, "", 10).await.unwrap();
    (seq, list.into_iter().map(|b| (b.account_ref, b.stale)).collect())
}

/// A blob literal in the test database's dialect.
fn blob(db: &TestDb, bytes: &[u8]) -> String {
    match db.url {
        store::DbUrl::Sqlite(_) => format!("x'{}'", hex::encode(bytes)),
        store::DbUrl::Postgres(_) => format!("'\\x{}'::bytea", hex::encode(bytes)),
    }
}

/// A database as the numlink of migration 15 left it, with times as that numlink wrote them: unix
/// seconds in the holder's, the webhooks' and the pending ports' tables, RFC 3339 text of any width
/// elsewhere. After the upgrade to one convention (fixed-width RFC 3339 text), every limit, lock,
/// expiry, retry and report figure computed from those times is what it was.
async fn times_of_a_migration_15_database_keep_their_meaning(db: TestDb) {
    db.migrate_to(15);
    let now: i64 = 1_751_284_800; // 2025-06-30T12:00:00Z, the clock of `db.open("2025-06-30")`
    let key = store::testing::test_hash_key();
    let (locked, limited) = (num("+8613800138001"), num("+8613800138002"));
    let client_hash = &key.mac(b"otp-client|unknown")[..16];
    let mut sql = format!(
        "INSERT INTO participants (id, role, name, reporting_since, created_at) VALUES \
           ('car_a', 'carrier', 'A', 20200101, '2020-01-01T00:00:00Z'), \
           ('ins_a', 'institution', 'Bank', NULL, '2020-01-02T03:04:05.5Z'); \
         INSERT INTO prefixes (prefix, participant_seq) SELECT '86138', seq FROM participants WHERE id = 'car_a'; \
         INSERT INTO otp_numbers (number_hash, consecutive_failures, locked_until) VALUES ({}, 0, {});",
        blob(&db, &key.number(locked)),
        now + 100,
    );
    // Five codes sent to `limited` at this client's request in the last hour: the hourly share is used.
    for (i, ago) in [3000, 2500, 2000, 1500, 1000].into_iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO otp_challenges (id, number_hash, code_hash, created_at, expires_at, failures, used_at, \
             client_hash) VALUES ('otp_{i}', {}, {}, {}, {}, 0, NULL, {});",
            blob(&db, &key.number(limited)),
            blob(&db, &[0; 32]),
            now - ago,
            now - ago + 600,
            blob(&db, client_hash),
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO attestation_keys (kid, public_key, created_at, retired_at, publish_until) VALUES \
           ('k1', {pk}, {}, {}, {}), ('k2', {pk}, {}, NULL, NULL); \
         INSERT INTO pending_ports (carrier_seq, event_id, number, day, received_unix, job_id) \
           SELECT seq, 'in-1', 8613800138003, 20250620, {}, NULL FROM participants WHERE id = 'car_a'; \
         INSERT INTO webhook_endpoints (id, institution_seq, url, secret, previous_secret, previous_secret_until, enabled, \
           disabled_reason, failing_since, created_at) \
           SELECT 'whe_1', seq, 'https://bank.example/hooks', 'whsec_new', 'whsec_old', {}, 1, NULL, {}, \
           '2025-06-01T00:00:00Z' FROM participants WHERE id = 'ins_a'; \
         INSERT INTO notifications (id, institution_seq, type, created_at) \
           SELECT 'ntf_00000000000000000001', seq, 'webhook.endpoint_disabled', '2025-06-30T11:00:00.25Z' FROM participants WHERE id = 'ins_a'; \
         INSERT INTO deliveries (notification_seq, endpoint_id, attempts, next_attempt_at, state, updated_at) \
           SELECT seq, 'whe_1', 3, {}, 'pending', '2025-06-30T11:00:00Z' FROM notifications WHERE id = 'ntf_00000000000000000001'; \
         INSERT INTO unbind_requests (id, institution_seq, number_hash, tenure_start, state, reason, deadline, \
           attestation_id, created_at, created_unix, resolved_at, resolved_unix) \
           SELECT 'unb_00000000000000000001', seq, {}, 20250101, 'rejected', 'legal_hold', 20250610, 'att_1', \
           '2025-06-02T10:00:00.999999999Z', {}, '2025-06-02T12:30:00.5Z', {} FROM participants WHERE id = 'ins_a';",
        now - 86_400 * 30,
        now - 86_400,
        now + 86_400 * 6,
        now - 86_400,
        now - 86_400 * 10,
        now + 3_600,
        now - 7_200,
        now - 60,
        blob(&db, &key.number(locked)),
        1_748_858_400,
        1_748_867_400,
        pk = blob(&db, &[7; 32]),
    ));
    tamper(&db, &sql);
    let (store, _) = db.open("2025-06-30");
    assert_eq!(store.clock().now().as_second(), now);

    // The lock and the hourly share count as they did: retry when the lock ends, or an hour after
    // the oldest of the five codes.
    let limits = store::OtpLimits::default();
    assert_eq!(
        store.request_otp(locked, limits, None).await.unwrap().unwrap_err(),
        store::OtpRefused::Locked { retry_after_secs: 100 }
    );
    assert_eq!(
        store.request_otp(limited, limits, None).await.unwrap().unwrap_err(),
        store::OtpRefused::TooManySends { retry_after_secs: 600 }
    );
    // Keys, newest first, with their times.
    let keys: Vec<_> = store
        .attestation_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.created_at, k.retired_at, k.publish_until))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("k2".to_string(), now - 86_400, None, None),
            ("k1".to_string(), now - 86_400 * 30, Some(now - 86_400), Some(now + 86_400 * 6)),
        ]
    );
    // A pending port keeps its clock.
    let carrier = store.list_participants().await.unwrap().into_iter().find(|p| p.id == "car_a").unwrap();
    let ports = store.pending_ports(carrier.seq, 10).await.unwrap();
    assert_eq!(
        ports.iter().map(|p| (p.received_unix, p.expires_unix)).collect::<Vec<_>>(),
        vec![(now - 86_400 * 10, now + 86_400 * 20)]
    );
    // The endpoint signs with both secrets until the overlap ends, and has failed since two hours.
    let bank = store.list_participants().await.unwrap().into_iter().find(|p| p.id == "ins_a").unwrap();
    let endpoints = store.endpoints(bank.seq).await.unwrap();
    assert_eq!(
        (endpoints[0].previous_secret_until, endpoints[0].failing_since),
        (Some(now + 3_600), Some(now - 7_200))
    );
    assert_eq!(endpoints[0].signing_secrets(now).len(), 2);
    assert_eq!(endpoints[0].created_at, "2025-06-01T00:00:00.000Z");
    // The delivery is due, a minute late, and found due.
    assert_eq!(
        store.deliveries_of(&store::NotificationId::parse("ntf_00000000000000000001").unwrap()).await.unwrap()[0]
            .next_attempt_at,
        now - 60
    );
    assert_eq!(store.next_due().await.unwrap(), Some(now - 60));
    let due = store.due_by_endpoint(now, 10, 10, vec![]).await.unwrap();
    assert_eq!(due.iter().map(Vec::len).collect::<Vec<_>>(), vec![1]);
    // The report times the answer from the text times: 2.5 hours.
    let report = store.institution_report(5, None).await.unwrap();
    let line = report.iter().find(|r| r.institution_id == "ins_a").unwrap();
    assert_eq!((line.resolved, line.resolve_secs_median), (1, Some(9_000)));
    // Text of any width is now of one width, so text order is time order.
    assert_eq!(bank.created_at, "2020-01-02T03:04:05.500Z");
    assert_eq!(carrier.created_at, "2020-01-01T00:00:00.000Z");
    let request = store
        .unbind_request(bank.seq, &store::UnbindRequestId::parse("unb_00000000000000000001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (request.created_at.as_str(), request.created_unix, request.resolved_at.as_deref(), request.resolved_unix),
        // Cut to the millisecond as the code cuts, not rounded into the next second.
        ("2025-06-02T10:00:00.999Z", 1_748_858_400, Some("2025-06-02T12:30:00.500Z"), Some(1_748_867_400))
    );
}

/// Which notifications name a binding is kept in two tables (migration 27): those waiting, and those
/// the writer has filed, a step at a time in key order. At every step of two passes, with
/// notifications made midway both behind and ahead of the pass, every binding reads as stale exactly
/// when a notification names it, and each notification is in one of the tables, once.
async fn a_bindings_notifications_count_alike_filed_or_waiting(db: TestDb) {
    let store = db.open_without_idle_upkeep(std::sync::Arc::new(domain::FixedClock::at_day(day("2025-06-30"))));
    let c = carrier(&store, "Carrier A", "+86138").await;
    let (bank, _) = institution(&store).await;
    let number = |i: usize| format!("+86138001{i:05}");
    // Two bindings on each of 40 numbers, made in number order: their ids, which grow, follow it.
    let items = (0..40)
        .flat_map(|i| {
            ["a", "b"].map(|side| store::NewBinding {
                account_ref: domain::AccountRef::parse(&format!("{side}-{i:02}")).unwrap(),
                number: num(&number(i)),
                bound_on: day("2024-01-01"),
            })
        })
        .collect();
    assert!(store.register_bindings(bank.clone(), items).await.unwrap().iter().all(Result::is_ok));
    let disconnect = |range: std::ops::Range<usize>, date: &str| {
        range.map(|i| ev(&format!("d{i}"), &number(i), EventKind::Disconnected, date)).collect::<Vec<_>>()
    };
    let out = store.report_events(c.clone(), disconnect(0..20, "2024-06-01")).await.unwrap();
    assert!(out.iter().all(|o| o == &Outcome::Accepted), "{out:?}");

    let stale = |store: Store| async move {
        let list = store.bindings(bank.seq, "", 100).await.unwrap();
        assert_eq!(list.len(), 80);
        list.into_iter().filter(|b| b.stale).map(|b| b.account_ref).collect::<std::collections::BTreeSet<_>>()
    };
    let expected = |numbers: &[usize]| {
        numbers
            .iter()
            .flat_map(|i| [format!("a-{i:02}"), format!("b-{i:02}")])
            .collect::<std::collections::BTreeSet<_>>()
    };
    let tables = || {
        let (filed, waiting) = (
            count(&db, "SELECT COUNT(*) FROM binding_notifications"),
            count(&db, "SELECT COUNT(*) FROM binding_notifications_recent"),
        );
        let both = count(
            &db,
            "SELECT COUNT(*) FROM binding_notifications f JOIN binding_notifications_recent w \
             ON w.binding_id = f.binding_id AND w.seq = f.seq",
        );
        let made = count(&db, "SELECT COUNT(*) FROM notifications WHERE binding_id IS NOT NULL");
        assert_eq!((filed + waiting, both), (made, 0), "filed {filed}, waiting {waiting}");
        (filed, waiting)
    };
    let mut now_stale: Vec<usize> = (0..20).collect();
    assert_eq!(stale(store.clone()).await, expected(&now_stale));
    assert_eq!(tables(), (0, 40));

    let mut steps = 0;
    loop {
        let moved = store.file_notifications_step(7).await.unwrap();
        steps += 1;
        assert_eq!(stale(store.clone()).await, expected(&now_stale), "after step {steps}");
        let (_, waiting) = tables();
        if steps == 3 {
            // Midway through the first pass (21 filed: the bindings of numbers 0 to 10): numbers 20 to
            // 29 are disconnected (their bindings come after the pass's cursor) and numbers 0 to 4
            // taken by a new holder (before it).
            let mut events = disconnect(20..30, "2024-06-01");
            events.extend((0..5).map(|i| ev(&format!("r{i}"), &number(i), EventKind::Activated, "2024-12-01")));
            let out = store.report_events(c.clone(), events).await.unwrap();
            assert!(out.iter().all(|o| o == &Outcome::Accepted), "{out:?}");
            now_stale.extend(20..30);
            assert_eq!(stale(store.clone()).await, expected(&now_stale));
            assert_eq!(tables().1, 40 - 21 + 20 + 10);
        }
        if moved == 0 {
            assert_eq!(waiting, 0);
            break;
        }
        assert!(moved <= 7 && steps < 50, "step {steps} filed {moved}");
    }
    assert_eq!(tables(), (70, 0));
    // Numbers 0 to 4 were notified twice, of the disconnection and then of the new holder.
    let notified = store.notifications(bank.seq, 0, 100).await.unwrap();
    assert_eq!(notified.len(), 70);
}

/// A database of the numlink before notifications were filed by binding apart from them (migration
/// 26): its notifications still make their bindings stale after the upgrade, and the (binding, event)
/// key it enforced is gone without losing a row.
async fn notifications_made_before_they_were_filed_by_binding_still_count(db: TestDb) {
    db.migrate_to(26);
    let binding = |id: &str, account: &str, hash: u8| {
        format!(
            "INSERT INTO bindings (id, institution_seq, account_ref, number_hash, bound_on, stale, created_at) \
             SELECT '{id}', seq, '{account}', {}, 20240101, 0, '2024-01-01T00:00:00.000Z' FROM participants WHERE id = 'ins_a';",
            blob(&db, &[hash])
        )
    };
    tamper(
        &db,
        &format!(
            "INSERT INTO participants (id, role, name, created_at) VALUES ('ins_a', 'institution', 'A', '2020-01-01T00:00:00Z'); \
             {} {} \
             INSERT INTO notifications (id, institution_seq, binding_id, account_ref, type, event_key, created_at, unbind_request_id) \
               SELECT 'ntf_00000000000000000001', seq, 'bnd_00000000000000000001', 'notified', 'number.disconnected', {}, \
               '2024-06-01T00:00:00.000Z', NULL FROM participants WHERE id = 'ins_a';",
            binding("bnd_00000000000000000001", "notified", 0x01),
            binding("bnd_00000000000000000002", "quiet", 0x02),
            blob(&db, &[0xaa])
        ),
    );
    let (store, _) = db.open("2025-06-30");
    let (seq, stale) = stale_bindings_of_ins_a(&store).await;
    assert_eq!(stale, vec![("notified".to_string(), true), ("quiet".to_string(), false)]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM binding_notifications"), 1);
    assert_eq!(store.notifications(seq, 0, 10).await.unwrap().len(), 1);
    // The (binding, event) key is gone: a second row with the same pair is stored (the code never
    // makes one; were the key still there, a notification would fail as a reissued id).
    tamper(
        &db,
        &format!(
            "INSERT INTO notifications (id, institution_seq, binding_id, account_ref, type, event_key, created_at) \
             SELECT 'ntf_00000000000000000002', seq, 'bnd_00000000000000000001', 'notified', 'number.disconnected', {}, \
             '2024-06-02T00:00:00.000Z' FROM participants WHERE id = 'ins_a';",
            blob(&db, &[0xaa])
        ),
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM notifications WHERE binding_id = 'bnd_00000000000000000001'"), 2);
}

/// A database of the numlink before deliveries were keyed by endpoint (migration 27): its pending
/// delivery is still due, at the same time, and its delivered one is not; both stay in the endpoint's
/// log and on their notification.
async fn deliveries_made_before_they_were_keyed_by_endpoint_are_still_due(db: TestDb) {
    db.migrate_to(27);
    let notification = |id: &str| {
        format!(
            "INSERT INTO notifications (id, institution_seq, account_ref, endpoint_id, type, created_at) \
             SELECT '{id}', seq, NULL, 'whe_1', 'webhook.test', '2025-06-29T00:00:00.000Z' FROM participants WHERE id = 'ins_a';"
        )
    };
    let delivery = |id: &str, state: &str| {
        format!(
            "INSERT INTO deliveries (notification_seq, endpoint_id, attempts, next_attempt_at, state, last_status, \
             last_error, updated_at) SELECT seq, 'whe_1', 1, '2025-06-30T08:00:00.000Z', '{state}', 503, 'busy', \
             '2025-06-29T00:00:00.000Z' FROM notifications WHERE id = '{id}';"
        )
    };
    tamper(
        &db,
        &format!(
            "INSERT INTO participants (id, role, name, created_at) VALUES ('ins_a', 'institution', 'A', '2020-01-01T00:00:00Z'); \
             INSERT INTO webhook_endpoints (id, institution_seq, url, secret, enabled, created_at) \
               SELECT 'whe_1', seq, 'https://bank.example/hook', 'whsec_x', 1, '2025-06-01T00:00:00.000Z' \
               FROM participants WHERE id = 'ins_a'; \
             {} {} {} {}",
            notification("ntf_00000000000000000001"),
            notification("ntf_00000000000000000002"),
            delivery("ntf_00000000000000000001", "pending"),
            delivery("ntf_00000000000000000002", "delivered"),
        ),
    );
    let (store, _) = db.open("2025-06-30");
    let at = jiff::Timestamp::from_second(store.next_due().await.unwrap().expect("a delivery is due")).unwrap();
    assert_eq!(at.to_string(), "2025-06-30T08:00:00Z");
    let due = store.due_by_endpoint(at.as_second(), 10, 10, vec![]).await.unwrap();
    let due: Vec<(String, String)> =
        due.iter().flatten().map(|d| (d.notification.id.to_string(), d.endpoint.id.to_string())).collect();
    assert_eq!(due, vec![("ntf_00000000000000000001".to_string(), "whe_1".to_string())]);
    for (id, state) in [("ntf_00000000000000000001", "pending"), ("ntf_00000000000000000002", "delivered")] {
        let id = store::NotificationId::parse(id).unwrap();
        let states = store.deliveries_of(&id).await.unwrap();
        let kept = states
            .iter()
            .map(|d| (d.endpoint_id.as_str(), d.state.as_str(), d.attempts, d.last_status, d.last_error.as_deref()))
            .collect::<Vec<_>>();
        assert_eq!(kept, vec![("whe_1", state, 1, Some(503), Some("busy"))]);
    }
}

/// Past `notifications_waiting_max`, the writer files notifications by binding after every batch,
/// though it is never idle here: below it, they wait.
async fn a_busy_writer_files_notifications_once_too_many_wait(db: TestDb) {
    let clock = std::sync::Arc::new(domain::FixedClock::at_day(day("2025-06-30")));
    let store = db.open_configured(clock, |c| {
        c.upkeep_when_idle = false;
        c.notifications_waiting_max = 5;
    });
    let c = carrier(&store, "Carrier A", "+86138").await;
    let (bank, _) = institution(&store).await;
    let number = |i: usize| format!("+86138002{i:05}");
    let items = (0..60)
        .map(|i| store::NewBinding {
            account_ref: domain::AccountRef::parse(&format!("acct-{i:02}")).unwrap(),
            number: num(&number(i)),
            bound_on: day("2024-01-01"),
        })
        .collect();
    assert!(store.register_bindings(bank.clone(), items).await.unwrap().iter().all(Result::is_ok));
    let disconnect = |range: std::ops::Range<usize>| {
        range.map(|i| ev(&format!("d{i}"), &number(i), EventKind::Disconnected, "2024-06-01")).collect::<Vec<_>>()
    };
    // The writer's upkeep after a batch runs before the next command: one more write, then look.
    let tables = || async {
        store.register_bindings(bank.clone(), vec![]).await.unwrap();
        (
            count(&db, "SELECT COUNT(*) FROM binding_notifications"),
            count(&db, "SELECT COUNT(*) FROM binding_notifications_recent"),
        )
    };
    store.report_events(c.clone(), disconnect(0..4)).await.unwrap();
    assert_eq!(tables().await, (0, 4), "four wait: fewer than five");
    store.report_events(c.clone(), disconnect(4..60)).await.unwrap();
    let (filed, waiting) = tables().await;
    assert!(waiting < 5 && filed + waiting == 60, "filed {filed}, waiting {waiting}");
    assert_eq!(store.bindings(bank.seq, "", 100).await.unwrap().iter().filter(|b| b.stale).count(), 60);
}
