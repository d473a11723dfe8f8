//! Participants (carriers, institutions, regulators, the number-portability database) and their API
//! keys.

use domain::{CarrierId, Day, Prefix};

use crate::StoreError;
use crate::ids::ParticipantId;
use crate::keys::ApiKey;
use crate::sql::{Conn, Row};
use crate::writer::WriteCtx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Carrier,
    Institution,
    Regulator,
    /// The national number-portability database: reports whole ports (R3).
    Portability,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Carrier => "carrier",
            Role::Institution => "institution",
            Role::Regulator => "regulator",
            Role::Portability => "portability",
        }
    }

    pub const ALL: [Role; 4] = [Role::Carrier, Role::Institution, Role::Regulator, Role::Portability];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Role::Carrier => "car",
            Role::Institution => "ins",
            Role::Regulator => "reg",
            Role::Portability => "npd",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewParticipant {
    pub role: Role,
    pub name: String,
    pub prefixes: Vec<Prefix>,
    pub reporting_since: Option<Day>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The store's key; also the `CarrierId` of a carrier.
    pub seq: i64,
    pub id: ParticipantId,
    pub role: Role,
    pub name: String,
    /// A carrier's ranges. Filled where the participant is listed or created; left empty on the
    /// authentication path, which runs on every request and has no use for them (the writer keeps its
    /// own range table).
    pub prefixes: Vec<Prefix>,
    pub reporting_since: Option<Day>,
    pub created_at: String,
}

impl Participant {
    pub fn carrier_id(&self) -> CarrierId {
        CarrierId(self.seq)
    }
}

pub const NAME_CHARS_MAX: usize = 200;
pub const PREFIXES_MAX: usize = 1000;

const SELECT: &str = "SELECT seq, id, role, name, reporting_since, created_at FROM participants";

pub(crate) fn from_row(conn: &mut dyn Conn, r: &Row, with_prefixes: bool) -> Result<Participant, StoreError> {
    let seq = r.i64(0)?;
    let role = r.text(2)?;
    let mut p = Participant {
        seq,
        id: ParticipantId::stored(r.text(1)?),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        name: r.text(3)?,
        prefixes: Vec::new(),
        reporting_since: r.opt_i64(4).and_then(|v| Day::from_packed(v as i32)),
        created_at: r.text(5)?,
    };
    if with_prefixes {
        p.prefixes = conn
            .query("SELECT prefix FROM prefixes WHERE participant_seq = $1 ORDER BY prefix", &[seq.into()])?
            .iter()
            .map(|row| {
                let digits = row.text(0)?;
                Prefix::parse(&format!("+{digits}")).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(p)
}

pub(crate) fn list(conn: &mut dyn Conn) -> Result<Vec<Participant>, StoreError> {
    let rows = conn.query(&format!("{SELECT} ORDER BY seq"), &[])?;
    rows.iter().map(|r| from_row(conn, r, true)).collect()
}

pub(crate) fn by_key_hash(conn: &mut dyn Conn, hash: &[u8; 32]) -> Result<Option<Participant>, StoreError> {
    let row = conn.query_one(
        "SELECT p.seq, p.id, p.role, p.name, p.reporting_since, p.created_at FROM api_keys k \
         JOIN participants p ON p.seq = k.participant_seq WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        &[hash.as_slice().into()],
    )?;
    row.map(|r| from_row(conn, &r, false)).transpose()
}

pub(crate) fn by_id(conn: &mut dyn Conn, id: &str) -> Result<Option<Participant>, StoreError> {
    let row = conn.query_one(&format!("{SELECT} WHERE id = $1"), &[id.into()])?;
    row.map(|r| from_row(conn, &r, true)).transpose()
}

pub(crate) fn by_seq(conn: &mut dyn Conn, seq: i64) -> Result<Option<Participant>, StoreError> {
    let row = conn.query_one(&format!("{SELECT} WHERE seq = $1"), &[seq.into()])?;
    row.map(|r| from_row(conn, &r, true)).transpose()
}

pub(crate) fn prefix_owner(conn: &mut dyn Conn, prefix: &Prefix) -> Result<Option<String>, StoreError> {
    let row = conn.query_one(
        "SELECT p.id FROM prefixes x JOIN participants p ON p.seq = x.participant_seq WHERE x.prefix = $1",
        &[prefix.digits().into()],
    )?;
    row.map(|r| r.text(0)).transpose()
}

impl WriteCtx {
    pub(crate) fn add_participant(&mut self, p: NewParticipant) -> Result<(Participant, ApiKey), StoreError> {
        let name = p.name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
            return Err(StoreError::invalid("NAME_LENGTH", format!("name must be 1 to {NAME_CHARS_MAX} characters")));
        }
        if p.role == Role::Carrier {
            if p.reporting_since.is_none() {
                return Err(StoreError::invalid(
                    "REPORTING_SINCE_MISSING",
                    "a carrier needs --reporting-since YYYY-MM-DD",
                ));
            }
            if p.prefixes.len() > PREFIXES_MAX {
                return Err(StoreError::Limit {
                    limit: "PREFIXES_MAX",
                    max: PREFIXES_MAX as u64,
                    what: "prefixes per carrier",
                });
            }
        } else if !p.prefixes.is_empty() || p.reporting_since.is_some() {
            return Err(StoreError::invalid(
                "NOT_A_CARRIER",
                format!("only carriers have prefixes and a reporting-since date, not a {}", p.role.as_str()),
            ));
        }
        for prefix in &p.prefixes {
            if let Some(owner) = prefix_owner(self.conn.as_mut(), prefix)? {
                return Err(StoreError::Conflict {
                    what: format!("prefix {prefix}"),
                    with: format!("{owner}, to which it already belongs"),
                });
            }
        }
        let id = ParticipantId::issue(p.role.id_prefix());
        let now = self.now_rfc3339();
        let row = self
            .conn
            .query_one(
                "INSERT INTO participants (id, role, name, reporting_since, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                &[
                    id.as_str().into(),
                    p.role.as_str().into(),
                    name.into(),
                    p.reporting_since.map(|d| d.packed()).into(),
                    now.as_str().into(),
                ],
            )?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
        let seq = row.i64(0)?;
        let mut prefixes = p.prefixes.clone();
        prefixes.sort();
        prefixes.dedup();
        for prefix in &prefixes {
            self.conn.exec(
                "INSERT INTO prefixes (prefix, participant_seq) VALUES ($1, $2)",
                &[prefix.digits().into(), seq.into()],
            )?;
        }
        let key = self.issue_key(seq)?;
        self.bump_participants_generation()?;
        let detail = format!(
            "role={};name={};prefixes={};reportingSince={}",
            p.role.as_str(),
            name,
            prefixes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            p.reporting_since.map(|d| d.to_string()).unwrap_or_default()
        );
        self.audit("operator", "participant.added", None, &format!("id={id};{detail}"))?;
        let participant = Participant {
            seq,
            id,
            role: p.role,
            name: name.to_string(),
            prefixes,
            reporting_since: p.reporting_since,
            created_at: now,
        };
        Ok((participant, key))
    }

    fn issue_key(&mut self, seq: i64) -> Result<ApiKey, StoreError> {
        let key = ApiKey::generate();
        let hash = ApiKey::hash_of(key.expose());
        let now = self.now_rfc3339();
        self.conn.exec(
            "INSERT INTO api_keys (key_hash, participant_seq, created_at) VALUES ($1, $2, $3)",
            &[hash.as_slice().into(), seq.into(), now.into()],
        )?;
        Ok(key)
    }

    fn participant_seq(&mut self, id: &str) -> Result<i64, StoreError> {
        by_id(self.conn.as_mut(), id)?
            .map(|p| p.seq)
            .ok_or_else(|| StoreError::NotFound { what: "participant with id", id: id.to_string() })
    }

    /// Revokes the participant's keys, and moves the participants' generation: every process forgets
    /// the keys it remembers once it follows this commit.
    fn revoke_all(&mut self, seq: i64) -> Result<u64, StoreError> {
        let now = self.now_rfc3339();
        let revoked = self.conn.exec(
            "UPDATE api_keys SET revoked_at = $1 WHERE participant_seq = $2 AND revoked_at IS NULL",
            &[now.into(), seq.into()],
        )?;
        self.bump_participants_generation()?;
        Ok(revoked)
    }

    pub(crate) fn rotate_key(&mut self, id: &str) -> Result<ApiKey, StoreError> {
        let seq = self.participant_seq(id)?;
        let revoked = self.revoke_all(seq)?;
        let key = self.issue_key(seq)?;
        self.audit("operator", "participant.key_rotated", None, &format!("id={id};revoked={revoked}"))?;
        Ok(key)
    }

    pub(crate) fn revoke_keys(&mut self, id: &str) -> Result<u64, StoreError> {
        let seq = self.participant_seq(id)?;
        let revoked = self.revoke_all(seq)?;
        self.audit("operator", "participant.keys_revoked", None, &format!("id={id};revoked={revoked}"))?;
        Ok(revoked)
    }
}
