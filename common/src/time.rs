//! Wall-clock helpers: Rampart stores and sends times as Unix milliseconds and shows them as
//! RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (UTC, seconds) for a Unix-milliseconds time; `-` for 0 (never).
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses a human duration such as `30s`, `1h`, `2h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); examples: 30s, 10m, 1h, 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_ms(0), "-");
        assert_eq!(format_ms(1_000), "1970-01-01T00:00:01Z");
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("soon").unwrap_err().contains("examples"));
    }
}
