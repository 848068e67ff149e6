//! How many replicas must have a produced batch before its producer hears
//! back: [`Acks`]. Checked once, where it enters (the `--acks` flag, the
//! Rust producer's config, the broker's produce request); nothing inside
//! YaK sees an unchecked value. On the wire it stays the i8 Kafka uses
//! (0, 1, -1), so old peers and raw-protocol tests still speak it.

use crate::errors::{ErrorBody, ErrorCode};
use std::fmt;
use std::str::FromStr;

/// A producer's acknowledgement level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acks {
    /// No answer at all (`acks=0`).
    None,
    /// Answered once the leader has appended it (`acks=1`).
    Leader,
    /// Answered once every in-sync replica has it and the ISR holds at
    /// least `min.insync.replicas` (`acks=all`, `-1` on the wire).
    All,
}

/// A value that is not 0, 1 or -1 (all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcksError {
    /// A wire value outside 0, 1, -1.
    #[error("acks must be 0, 1 or -1 (all), got {0}")]
    Wire(i8),
    /// A command-line spelling other than 0, 1, all, -1.
    #[error("acks must be 0, 1 or all, not '{0}'")]
    Text(String),
}

impl Acks {
    /// The wire value: 0, 1 or -1.
    pub fn as_i8(self) -> i8 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// A produce request's `acks` as the receiving broker checks it: any
    /// value other than 0, 1, -1 is an `InvalidRequest` answer naming it,
    /// never some other level.
    pub fn from_wire(raw: i8) -> Result<Acks, ErrorBody> {
        Acks::try_from(raw).map_err(|e| ErrorBody::new(ErrorCode::InvalidRequest, e.to_string()))
    }
}

impl TryFrom<i8> for Acks {
    type Error = AcksError;

    fn try_from(v: i8) -> Result<Acks, AcksError> {
        match v {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            -1 => Ok(Acks::All),
            other => Err(AcksError::Wire(other)),
        }
    }
}

impl From<Acks> for i8 {
    fn from(a: Acks) -> i8 {
        a.as_i8()
    }
}

impl FromStr for Acks {
    type Err = AcksError;

    /// `0`, `1`, `all` or `-1`, as the `--acks` flag takes them.
    fn from_str(s: &str) -> Result<Acks, AcksError> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(AcksError::Text(other.to_string())),
        }
    }
}

impl fmt::Display for Acks {
    /// `0`, `1` or `all`, as Kafka's documentation writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_wire_values_when_checking_should_map_each_level_and_back() {
        for (raw, want) in [(0, Acks::None), (1, Acks::Leader), (-1, Acks::All)] {
            assert_eq!(Acks::from_wire(raw), Ok(want), "wire {raw}");
            assert_eq!(i8::from(want), raw, "{want:?} encodes as before");
        }
    }

    #[test]
    fn given_bad_wire_values_when_checking_should_refuse_as_invalid_request_naming_the_value() {
        for raw in [2i8, -2, 5, i8::MIN, i8::MAX] {
            let err = Acks::from_wire(raw).expect_err("acks outside 0, 1, -1");
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{raw}");
            assert_eq!(
                err.message,
                format!("acks must be 0, 1 or -1 (all), got {raw}")
            );
        }
    }

    #[test]
    fn given_flag_spellings_when_parsing_should_accept_only_kafka_values() {
        assert_eq!("0".parse(), Ok(Acks::None));
        assert_eq!("1".parse(), Ok(Acks::Leader));
        assert_eq!("all".parse(), Ok(Acks::All));
        assert_eq!("-1".parse(), Ok(Acks::All));
        for bad in ["2", "ALL", "", "leader", "-2"] {
            assert_eq!(
                bad.parse::<Acks>(),
                Err(AcksError::Text(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn given_each_level_when_displaying_then_parsing_should_round_trip() {
        for a in [Acks::None, Acks::Leader, Acks::All] {
            assert_eq!(a.to_string().parse(), Ok(a));
        }
    }
}
