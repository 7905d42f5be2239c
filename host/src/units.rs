//! Units an operator writes: sizes (`"64MiB"`, `"512 KiB"`, bytes) and
//! durations (`"500ms"`, `"5s"`, `"1m 30s"`), parsed the same way for flags,
//! `hookhost.toml` and plugin manifests, with errors that show an example.

use std::time::Duration;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Parses a duration such as `"500ms"`, `"5s"` or `"1m 30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|err| {
        format!("invalid duration \"{text}\" ({err}); write e.g. \"500ms\", \"5s\" or \"2m\"")
    })
}

/// Parses a size such as `"64MiB"`, `"512 KiB"`, `"1MB"` or `"1048576"` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let bad = || format!("invalid size \"{text}\"; write e.g. \"64MiB\", \"512KiB\" or \"1GiB\"");
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1000 * 1000,
        "mib" | "m" => MIB,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1024 * MIB,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), MIB);
        assert_eq!(parse_size("64MiB").unwrap(), 64 * MIB);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("2g").unwrap(), 2048 * MIB);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
