//! Record times: RFC 3339 in UTC with milliseconds (`2026-11-26T10:04:05.123Z`), a form
//! that sorts as text in time order, and the times people type for `--since`, `--until`
//! and `--before`.

pub use crate::error::{TimeError, TimeProblem};

/// Now, as a record time.
pub fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    format_millis(ms)
}

/// Milliseconds since the Unix epoch as a record time.
pub fn format_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z");
    }
    // Every record's time is formatted on the caller's path: digits written in place,
    // without `format!`'s machinery.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [
        (0, 4, y),
        (5, 2, m),
        (8, 2, d),
        (11, 2, h),
        (14, 2, min),
        (17, 2, s),
        (20, 3, milli),
    ] {
        let mut value = value;
        for digit in out[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8(out.to_vec()).expect("ASCII digits")
}

/// Parses a time given on the command line into milliseconds since the Unix epoch.
///
/// Accepted: `2026-11-26` (midnight UTC), `2026-11-26T10:04`, `2026-11-26T10:04:05`,
/// with optional fraction, and `Z` or an offset like `+01:00` (UTC if none; a space may
/// stand for the `T`); or an age: `90s`, `15m`, `2h`, `7d` before now.
pub fn parse(text: &str) -> Result<i64, TimeError> {
    parse_inner(text.trim()).map_err(|problem| TimeError {
        text: text.to_string(),
        problem,
    })
}

/// [`parse`], then [`format_millis`]: a bound to compare record times with.
pub fn parse_bound(text: &str) -> Result<String, TimeError> {
    parse(text).map(format_millis)
}

/// Stops [`parse_inner`] with `problem`.
macro_rules! bail {
    ($($problem:tt)*) => {
        return Err(TimeProblem(format!($($problem)*)))
    };
}

fn parse_inner(text: &str) -> Result<i64, TimeProblem> {
    let problem = |err: &dyn std::error::Error| TimeProblem(err.to_string());
    if let Some(age) = parse_age(text) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|err| problem(&err))?
            .as_millis();
        return Ok(i64::try_from(now).map_err(|err| problem(&err))? - age);
    }
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        bail!("not a date");
    }
    let year: i64 = num(&text[0..4])?;
    let month: i64 = num(&text[5..7])?;
    let day: i64 = num(&text[8..10])?;
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        bail!("no such day");
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let mut rest = &text[10..];
    if rest.is_empty() {
        return Ok(ms);
    }
    if !(rest.starts_with('T') || rest.starts_with('t') || rest.starts_with(' ')) {
        bail!("expected T after the date");
    }
    rest = &rest[1..];
    if rest.len() < 5 || rest.as_bytes()[2] != b':' {
        bail!("expected HH:MM");
    }
    let hour: i64 = num(&rest[0..2])?;
    let minute: i64 = num(&rest[3..5])?;
    rest = &rest[5..];
    let mut second = 0;
    if let Some(r) = rest.strip_prefix(':') {
        if r.len() < 2 {
            bail!("expected seconds");
        }
        second = num(&r[0..2])?;
        rest = &r[2..];
    }
    if hour > 23 || minute > 59 || second > 60 {
        bail!("no such time of day");
    }
    ms += (hour * 3600 + minute * 60 + second) * 1000;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            bail!("expected digits after '.'");
        }
        let frac = format!("{:0<3}", &r[..digits.min(3)]);
        ms += num::<i64>(&frac)?;
        rest = &r[digits..];
    }
    match rest {
        "" | "Z" | "z" => Ok(ms),
        offset if offset.len() == 6 && offset.as_bytes()[3] == b':' => {
            let sign = match &offset[..1] {
                "+" => 1,
                "-" => -1,
                _ => bail!("bad offset"),
            };
            let minutes = num::<i64>(&offset[1..3])? * 60 + num::<i64>(&offset[4..6])?;
            Ok(ms - sign * minutes * 60_000)
        }
        _ => bail!("unexpected {rest:?}"),
    }
}

fn parse_age(text: &str) -> Option<i64> {
    let unit = match text.chars().last()? {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    let n: i64 = text[..text.len() - 1].parse().ok()?;
    n.checked_mul(unit)
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, TimeProblem> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("expected digits, found {s:?}");
    }
    s.parse()
        .map_err(|_| TimeProblem("number out of range".to_string()))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digits written in place are the ones `format!` writes, across years, days
    /// and times, and outside four-digit years (where `format!` is used).
    #[test]
    fn formats_as_format_does() {
        let by_format = |ms: i64| {
            let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rest / 3_600_000,
                rest / 60_000 % 60,
                rest / 1000 % 60,
                rest % 1000
            )
        };
        let mut ms: i64 = -62_167_219_200_001; // a millisecond before year 0
        while ms < 253_402_300_800_000 + 86_400_000 {
            assert_eq!(format_millis(ms), by_format(ms), "{ms}");
            ms += 86_399_999 * 37 + 1_234;
        }
        for ms in [0, 999, 951_782_400_000, 1_709_164_799_999, i64::MIN / 2] {
            assert_eq!(format_millis(ms), by_format(ms), "{ms}");
        }
    }

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        let ms = parse("2026-11-26T10:04:05.123Z").unwrap();
        assert_eq!(format_millis(ms), "2026-11-26T10:04:05.123Z");
        assert_eq!(
            parse_bound("2024-02-29").unwrap(),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            parse_bound("2026-01-01T00:30:00+01:00").unwrap(),
            "2025-12-31T23:30:00.000Z"
        );
        assert_eq!(
            parse_bound("2026-01-01 08:15").unwrap(),
            "2026-01-01T08:15:00.000Z"
        );
    }

    #[test]
    fn ages_are_before_now() {
        let hour_ago = parse("1h").unwrap();
        let now = parse("0s").unwrap();
        assert!((now - hour_ago - 3_600_000).abs() < 1000);
    }

    #[test]
    fn bad_times_say_what_is_accepted() {
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-01-01T25:00",
            "2026-01-01X",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("use RFC 3339"), "{bad}: {err}");
        }
    }
}
