//! Operator units on the command line (and in experiment files): sizes, rates, signals.

/// "512MiB", "2GB", "4k", "1048576".
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        u => {
            return Err(format!(
                "unknown size unit {u:?} (B, kB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// "1mbit", "500kbit", "8000" (bit/s).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (e.g. 1mbit)"))?;
    let mult = match unit {
        "" | "bit" | "bps" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        u => return Err(format!("unknown rate unit {u:?} (bit, kbit, mbit, gbit)")),
    };
    // Found by the property tests: "99999999999gbit" overflowed (a panic in debug builds).
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub fn signal_number(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let name = s.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    nix::sys::signal::Signal::iterator()
        .find(|sig| sig.as_str().trim_start_matches("SIG") == name)
        .map(|sig| sig as i32)
        .ok_or_else(|| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_rates_and_signals_parse() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(parse_rate("1mbit"), Ok(1_000_000));
        assert!(parse_rate("fast").is_err());
        // Regression (found by tests/tests/properties.rs): this overflowed and panicked.
        assert!(
            parse_rate("99999999999gbit")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(signal_number("TERM"), Ok(15));
        assert_eq!(signal_number("SIGKILL"), Ok(9));
        assert_eq!(signal_number("2"), Ok(2));
        assert!(signal_number("SIGNOPE").is_err());
    }
}
