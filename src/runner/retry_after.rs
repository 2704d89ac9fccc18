//! A provider's `Retry-After` header: how long it asks the application to wait.

use std::time::{Duration, SystemTime};

/// A `Retry-After` value (RFC 9110 §10.2.3) read at `now`: delay seconds, or an HTTP date
/// (IMF-fixdate, or the obsolete RFC 850 and asctime forms a recipient must accept), the
/// time from `now` until it, 0 for a date in the past; `None` for anything else.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    // Digits only, as the Python and Node workers read it ("+5" is not a delay); more
    // seconds than a u64 holds is a wait longer than any `max_retry_after`.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        // Fri, 31 Dec 1999 23:59:59 GMT, RFC 9110's example.
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799);
        let before = |s| date - Duration::from_secs(s);
        let at = |v: &str, now| parse(v, now);
        assert_eq!(at(" 120 ", date), Some(Duration::from_secs(120)));
        let fixdate = "Fri, 31 Dec 1999 23:59:59 GMT";
        assert_eq!(at(fixdate, before(90)), Some(Duration::from_secs(90)));
        // The obsolete forms a recipient must accept.
        let rfc850 = "Friday, 31-Dec-99 23:59:59 GMT";
        assert_eq!(at(rfc850, before(5)), Some(Duration::from_secs(5)));
        let asctime = "Fri Dec 31 23:59:59 1999";
        assert_eq!(at(asctime, before(5)), Some(Duration::from_secs(5)));
        // A date in the past means now.
        assert_eq!(
            at(fixdate, date + Duration::from_secs(30)),
            Some(Duration::ZERO)
        );
        assert_eq!(at("99999999999999999999999", date), Some(Duration::MAX));
        for bad in [
            "",
            "-1",
            "+5",
            "1.5",
            "soon",
            "Fri, 32 Dec 1999 23:59:59 GMT",
        ] {
            assert_eq!(at(bad, date), None, "{bad:?}");
        }
    }
}
