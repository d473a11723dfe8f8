//! A small migrator: numbered SQL files per backend, applied once, in order, inside the writer lock so
//! that two processes starting on one database apply each migration once.

use crate::StoreError;
use crate::sql::{Conn, Dialect};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_registry.sql")),
    (2, include_str!("../migrations/sqlite/0002_bindings.sql")),
    (3, include_str!("../migrations/sqlite/0003_webhooks.sql")),
    (4, include_str!("../migrations/sqlite/0004_holder.sql")),
    (5, include_str!("../migrations/sqlite/0005_check_files.sql")),
    (6, include_str!("../migrations/sqlite/0006_check_log.sql")),
    (7, include_str!("../migrations/sqlite/0007_event_log.sql")),
    (8, include_str!("../migrations/sqlite/0008_events_stamp.sql")),
    (9, include_str!("../migrations/sqlite/0009_events_received_at.sql")),
    (10, include_str!("../migrations/sqlite/0010_ports.sql")),
    (11, include_str!("../migrations/sqlite/0011_tenure_marks.sql")),
    (12, include_str!("../migrations/sqlite/0012_kyc_attempts.sql")),
    (13, include_str!("../migrations/sqlite/0013_otp_clients.sql")),
    (14, include_str!("../migrations/sqlite/0014_deliveries_by_endpoint.sql")),
    (15, include_str!("../migrations/sqlite/0015_retention.sql")),
    (16, include_str!("../migrations/sqlite/0016_one_time_convention.sql")),
    (17, include_str!("../migrations/sqlite/0017_console_sessions.sql")),
    (18, include_str!("../migrations/sqlite/0018_delivery_log.sql")),
    (19, include_str!("../migrations/sqlite/0019_jobs_by_owner.sql")),
    (20, include_str!("../migrations/sqlite/0020_sms_codes_daily.sql")),
    (21, include_str!("../migrations/sqlite/0021_notifications_made.sql")),
    (22, include_str!("../migrations/sqlite/0022_jobs_in_number_order.sql")),
    (23, include_str!("../migrations/sqlite/0023_index_changes.sql")),
    (24, include_str!("../migrations/sqlite/0024_stale_by_notifications.sql")),
    (25, include_str!("../migrations/sqlite/0025_deliveries_due_in_order.sql")),
    (26, include_str!("../migrations/sqlite/0026_endpoint_batches.sql")),
    (27, include_str!("../migrations/sqlite/0027_notifications_filed_by_binding.sql")),
    (28, include_str!("../migrations/sqlite/0028_deliveries_by_endpoint_key.sql")),
    (29, include_str!("../migrations/sqlite/0029_index_followers.sql")),
    (30, include_str!("../migrations/sqlite/0030_shared_work.sql")),
    (31, include_str!("../migrations/sqlite/0031_sms_outbox.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_registry.sql")),
    (2, include_str!("../migrations/postgres/0002_bindings.sql")),
    (3, include_str!("../migrations/postgres/0003_webhooks.sql")),
    (4, include_str!("../migrations/postgres/0004_holder.sql")),
    (5, include_str!("../migrations/postgres/0005_check_files.sql")),
    (6, include_str!("../migrations/postgres/0006_check_log.sql")),
    (7, include_str!("../migrations/postgres/0007_event_log.sql")),
    (8, include_str!("../migrations/postgres/0008_events_stamp.sql")),
    (9, include_str!("../migrations/postgres/0009_events_received_at.sql")),
    (10, include_str!("../migrations/postgres/0010_ports.sql")),
    (11, include_str!("../migrations/postgres/0011_tenure_marks.sql")),
    (12, include_str!("../migrations/postgres/0012_kyc_attempts.sql")),
    (13, include_str!("../migrations/postgres/0013_otp_clients.sql")),
    (14, include_str!("../migrations/postgres/0014_deliveries_by_endpoint.sql")),
    (15, include_str!("../migrations/postgres/0015_retention.sql")),
    (16, include_str!("../migrations/postgres/0016_one_time_convention.sql")),
    (17, include_str!("../migrations/postgres/0017_console_sessions.sql")),
    (18, include_str!("../migrations/postgres/0018_delivery_log.sql")),
    (19, include_str!("../migrations/postgres/0019_jobs_by_owner.sql")),
    (20, include_str!("../migrations/postgres/0020_sms_codes_daily.sql")),
    (21, include_str!("../migrations/postgres/0021_notifications_made.sql")),
    (22, include_str!("../migrations/postgres/0022_jobs_in_number_order.sql")),
    (23, include_str!("../migrations/postgres/0023_index_changes.sql")),
    (24, include_str!("../migrations/postgres/0024_stale_by_notifications.sql")),
    (25, include_str!("../migrations/postgres/0025_deliveries_due_in_order.sql")),
    (26, include_str!("../migrations/postgres/0026_endpoint_batches.sql")),
    (27, include_str!("../migrations/postgres/0027_notifications_filed_by_binding.sql")),
    (28, include_str!("../migrations/postgres/0028_deliveries_by_endpoint_key.sql")),
    (29, include_str!("../migrations/postgres/0029_index_followers.sql")),
    (30, include_str!("../migrations/postgres/0030_shared_work.sql")),
    (31, include_str!("../migrations/postgres/0031_sms_outbox.sql")),
];

pub fn run(conn: &mut dyn Conn) -> Result<(), StoreError> {
    run_to(conn, None)
}

/// Applies the pending migrations up to `last` (all of them if `None`): tests build a database as an
/// earlier numlink left it.
pub(crate) fn run_to(conn: &mut dyn Conn, last: Option<i64>) -> Result<(), StoreError> {
    let dialect = conn.dialect();
    conn.begin_write()?;
    let result = (|| {
        let current = match dialect {
            Dialect::Sqlite => conn.query_one("PRAGMA user_version", &[])?.map(|r| r.i64(0)).transpose()?.unwrap_or(0),
            Dialect::Postgres => {
                conn.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")?;
                conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?
                    .map(|r| r.i64(0))
                    .transpose()?
                    .unwrap_or(0)
            }
        };
        let all = if dialect == Dialect::Sqlite { SQLITE } else { POSTGRES };
        let known = all.last().map_or(0, |(v, _)| *v);
        if current > known {
            // A newer numlink migrated this database: this one would write rows its schema lacks.
            return Err(StoreError::open(format!(
                "the database's schema is version {current}, newer than this numlink's ({known}): run the newer numlink"
            )));
        }
        for (version, sql) in all.iter().filter(|(v, _)| *v > current && last.is_none_or(|l| *v <= l)) {
            tracing::info!(version, "applying migration");
            conn.batch(sql)?;
            match dialect {
                Dialect::Sqlite => {
                    // A migration may edit a definition in place (a CHECK constraint, SQLite's documented
                    // way): moving the schema cookie makes every connection, this one too, read the
                    // schema again.
                    let cookie = conn.query_one("PRAGMA schema_version", &[])?.map(|r| r.i64(0)).transpose()?;
                    conn.batch(&format!(
                        "PRAGMA schema_version = {}; PRAGMA user_version = {version}",
                        cookie.unwrap_or(0) + 1
                    ))?;
                }
                Dialect::Postgres => {
                    conn.exec("INSERT INTO schema_migrations (version) VALUES ($1)", &[(*version).into()])?;
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.commit(),
        Err(e) => {
            let _ = conn.rollback();
            Err(e)
        }
    }
}
