//! Job ids: `MMDDHHMM-xyz`, a UTC minute stamp and three random characters.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// The 32 characters a job id's suffix is drawn from (Crockford-like: no
/// `i`, `l`, `o`, `u`, so ids read aloud without ambiguity).
pub const JOB_ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Number of random characters after the dash.
pub const JOB_ID_SUFFIX_LEN: usize = 3;
const STAMP_LEN: usize = 8;
const JOB_ID_LEN: usize = STAMP_LEN + 1 + JOB_ID_SUFFIX_LEN;

/// A syntactically valid job id.
///
/// Holding a `JobId` proves the string is exactly 8 ASCII digits, a dash and
/// three characters of [`JOB_ID_ALPHABET`], so it is safe to use as a path
/// component or a tmux session name. It is `Copy`: the twelve ASCII bytes
/// live inline, so ids pass by value without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct JobId([u8; JOB_ID_LEN]);

/// A string that is not of the `MMDDHHMM-xyz` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {0:?}: expected MMDDHHMM-xyz")]
pub struct InvalidJobId(pub String);

/// Random bytes for a job id could not be had from the operating system.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no randomness for a job id: {0}")]
pub struct RandomnessUnavailable(String);

impl JobId {
    /// Parses `s` strictly; anything but the exact form is rejected.
    pub fn parse(s: &str) -> Result<JobId, InvalidJobId> {
        let bytes = s.as_bytes();
        let well_formed = bytes.len() == JOB_ID_LEN
            && bytes[..STAMP_LEN].iter().all(u8::is_ascii_digit)
            && bytes[STAMP_LEN] == b'-'
            && bytes[STAMP_LEN + 1..]
                .iter()
                .all(|b| JOB_ID_ALPHABET.contains(b));
        match <[u8; JOB_ID_LEN]>::try_from(bytes) {
            Ok(id) if well_formed => Ok(JobId(id)),
            _ => Err(InvalidJobId(s.to_owned())),
        }
    }

    /// A fresh id for a job created at `now`. Ids of one minute share their
    /// stamp; the caller detects a collision (by creating the job directory)
    /// and asks again.
    pub fn generate(now: OffsetDateTime) -> Result<JobId, RandomnessUnavailable> {
        let mut random = [0u8; JOB_ID_SUFFIX_LEN];
        getrandom::fill(&mut random).map_err(|e| RandomnessUnavailable(e.to_string()))?;
        Ok(Self::from_parts(now, random))
    }

    /// The id for `now` whose suffix is chosen by `random` (each byte picks
    /// one character; 32 divides 256, so every character is equally likely).
    pub fn from_parts(now: OffsetDateTime, random: [u8; JOB_ID_SUFFIX_LEN]) -> JobId {
        let utc = now.to_offset(time::UtcOffset::UTC);
        let stamp = [u8::from(utc.month()), utc.day(), utc.hour(), utc.minute()];
        let mut id = [b'-'; JOB_ID_LEN];
        for (pair, value) in id[..STAMP_LEN].chunks_exact_mut(2).zip(stamp) {
            pair[0] = b'0' + value / 10;
            pair[1] = b'0' + value % 10;
        }
        for (slot, byte) in id[STAMP_LEN + 1..].iter_mut().zip(random) {
            *slot = JOB_ID_ALPHABET[usize::from(byte) % JOB_ID_ALPHABET.len()];
        }
        JobId(id)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        // Parsing and generation admit ASCII only, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobId::parse(s)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        JobId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn generated_ids_parse_and_carry_the_utc_minute() {
        let now = datetime!(2026-05-21 15:30:20 +02:00);
        for _ in 0..200 {
            let id = JobId::generate(now).unwrap();
            assert!(id.as_str().starts_with("05211330-"), "{id}");
            assert_eq!(JobId::parse(id.as_str()).unwrap(), id);
        }
    }

    #[test]
    fn every_alphabet_character_is_reachable() {
        let now = datetime!(2026-01-02 03:04:05 UTC);
        let mut seen = std::collections::BTreeSet::new();
        for byte in 0..=255u8 {
            let id = JobId::from_parts(now, [byte, 0, 0]);
            assert_eq!(&id.as_str()[..9], "01020304-");
            seen.insert(id.as_str().as_bytes()[9]);
        }
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn parse_rejects_everything_but_the_exact_form() {
        for good in ["05211530-abc", "00000000-000", "12312359-zzz"] {
            assert!(JobId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "05211530-ab",
            "05211530-abcd",
            "0521153-abc",
            "05211530_abc",
            "05211530-abi",
            "05211530-ABC",
            "05211530-ab/",
            "../../etc/pw",
            "0521153a-abc",
            "05211530-ab\u{e9}",
            " 05211530-abc",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_uses_the_plain_string_and_validates() {
        let id = JobId::parse("05211530-abc").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"05211530-abc\"");
        assert!(serde_json::from_str::<JobId>("\"nope\"").is_err());
    }
}
