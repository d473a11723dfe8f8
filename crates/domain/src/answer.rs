//! R2: "has the number changed hands since D?", answered from a number's facts alone, so that the
//! store, the index and the bulk join all answer with this one function.

use crate::date::Day;
use crate::history::{Coverage, Summary};

/// The tri-state answer (RND style). CAMARA maps `Yes` → `true`, `No` → `false`, and `NoData` to an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    Yes,
    No,
    /// The platform cannot say: the number is unknown (`coverage_start` is none) or D is before its
    /// coverage.
    NoData(NoDataReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoDataReason {
    /// In no carrier's range and without events (CAMARA: 404 `IDENTIFIER_NOT_FOUND`).
    UnknownNumber,
    /// D is before the number's coverage start (CAMARA: 400 `OUT_OF_RANGE`).
    BeforeCoverage,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::NoData(_) => "no_data",
        }
    }
}

/// What R2 needs to know about one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NumberFacts {
    /// The `reportingSince` of the carrier whose range holds the number, or else the date of its first
    /// event; none if neither exists.
    pub coverage_start: Option<Day>,
    pub last_end: Option<Day>,
    pub last_activation: Option<Day>,
    pub disconnected: bool,
}

impl NumberFacts {
    pub fn new(coverage: &Coverage, summary: &Summary) -> NumberFacts {
        NumberFacts {
            coverage_start: coverage.reporting_since.or(summary.first_event),
            last_end: summary.last_end,
            last_activation: summary.last_activation,
            disconnected: summary.disconnected,
        }
    }
}

/// D is after today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateAfterToday;

/// R2, step by step as DESIGN.md states it.
#[inline]
pub fn reassigned_since(n: &NumberFacts, d: Day, today: Day) -> Result<Answer, DateAfterToday> {
    // 1. D after T.
    if d > today {
        return Err(DateAfterToday);
    }
    // 2. Unknown number.
    let Some(coverage_start) = n.coverage_start else {
        return Ok(Answer::NoData(NoDataReason::UnknownNumber));
    };
    // 3. A disconnection or transfer on or after D (inclusive, as in the RND).
    if n.last_end.is_some_and(|end| end >= d) {
        return Ok(Answer::Yes);
    }
    // 4. D before coverage.
    if d < coverage_start {
        return Ok(Answer::NoData(NoDataReason::BeforeCoverage));
    }
    // 5. Disconnected now: whoever held it at D does not hold it now.
    if n.disconnected {
        return Ok(Answer::Yes);
    }
    // 6. The current tenure started after D.
    if n.last_activation.is_some_and(|start| start > d) {
        return Ok(Answer::Yes);
    }
    // 7.
    Ok(Answer::No)
}
