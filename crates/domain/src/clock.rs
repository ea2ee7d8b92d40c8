//! Time as Scimitar sees it: a [`Timestamp`] type and the [`Clock`] that is passed in, never read
//! ambiently, so that tests control time (expiry, rotation and audit order depend on it).

use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch, UTC. Stored as an integer so both databases compare and
/// index it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The same instant without its sub-millisecond part: timestamps are rendered with
    /// millisecond precision, so they are stored with it too, and a client comparing with a
    /// value it read gets an exact answer.
    pub const fn truncated_to_millis(self) -> Self {
        Timestamp(self.0 - self.0.rem_euclid(1_000))
    }

    /// Parses an RFC 3339 / xsd:dateTime value with any offset.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
        let micros = parsed.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros).ok().map(Timestamp)
    }

    /// Formats as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-23T09:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(moment) => {
                let (year, month, day) = (moment.year(), u8::from(moment.month()), moment.day());
                let Ok(year @ 0..=9999) = u16::try_from(year) else {
                    return format!(
                        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                        moment.hour(),
                        moment.minute(),
                        moment.second(),
                        moment.millisecond()
                    );
                };
                // Digit by digit: every resource rendered carries two of these, and `format!`
                // was a visible share of a GET's CPU.
                let mut text = String::with_capacity(24);
                push_digits(&mut text, year, 4);
                text.push('-');
                push_digits(&mut text, u16::from(month), 2);
                text.push('-');
                push_digits(&mut text, u16::from(day), 2);
                text.push('T');
                push_digits(&mut text, u16::from(moment.hour()), 2);
                text.push(':');
                push_digits(&mut text, u16::from(moment.minute()), 2);
                text.push(':');
                push_digits(&mut text, u16::from(moment.second()), 2);
                text.push('.');
                push_digits(&mut text, moment.millisecond(), 3);
                text.push('Z');
                text
            }
            Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
        }
    }
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(text: &mut String, value: u16, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u16.pow(place)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock. The only place in the code base that reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp(i64::try_from(nanos / 1_000).unwrap_or(i64::MAX))
    }
}

/// A clock that tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(start.as_micros()))
    }
    pub fn advance_micros(&self, micros: i64) {
        self.0
            .fetch_add(micros, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let stamp = Timestamp::from_micros(1_700_000_000_123_000);
        let text = stamp.to_rfc3339();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(
            Timestamp::from_micros(1_000).to_rfc3339(),
            "1970-01-01T00:00:00.001Z"
        );
        assert_eq!(
            Timestamp::from_micros(253_402_300_799_999_000).to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(stamp));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let with_offset = Timestamp::parse_rfc3339("2015-10-10T14:38:21.86-07:00");
        let utc = Timestamp::parse_rfc3339("2015-10-10T21:38:21.86Z");
        assert!(with_offset.is_some());
        assert_eq!(with_offset, utc);
    }
}
