//! Kubernetes resource quantities and durations as the API machinery
//! prints them, so `kubectl` and the HPA read Vigil's numbers exactly as
//! they read metrics-server's: the canonical decimal form (`"608075001n"`,
//! `"250m"`, `"12340u"`, `"5k"`), the binary form for bytes (`"4Ki"`,
//! `"2Gi"`), and Go's `time.Duration` string (`"15.012s"`, `"1m0s"`).

/// A decimal quantity `mantissa × 10^exponent` in canonical form: trailing
/// zeros stripped, then the exponent brought down to a multiple of three
/// and named by its SI suffix.
fn decimal(mut mantissa: u64, mut exponent: i32) -> String {
    if mantissa == 0 {
        return "0".into();
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    while exponent.rem_euclid(3) != 0 {
        match mantissa.checked_mul(10) {
            Some(m) => mantissa = m,
            // Too large to pad: print the digits with the exponent's zeros.
            None => break,
        }
        exponent -= 1;
    }
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        e if e > 0 => return format!("{mantissa}{}", "0".repeat(e as usize)),
        // Below nano cannot arise from the integers this module takes.
        _ => "n",
    };
    format!("{mantissa}{suffix}")
}

/// CPU in nanocores, as metrics-server reports it (`NewScaledQuantity(n, -9)`).
pub fn nanocores(n: u64) -> String {
    decimal(n, -9)
}

/// A value in thousandths, as prometheus-adapter reports metric values
/// (`NewMilliQuantity(v*1000)`, truncated toward zero; negative values
/// keep their sign; not a number is 0).
pub fn millis(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    // `as` saturates at the integer range, where Go's conversion is undefined.
    let m = (v * 1000.0).trunc() as i64;
    if m < 0 {
        format!("-{}", decimal(m.unsigned_abs(), -3))
    } else {
        decimal(m as u64, -3)
    }
}

/// Bytes in the binary form (`BinarySI`): a whole multiple of 1024 gets the
/// largest exact suffix, other values from 1024 up are plain digits, and
/// values under 1024 take the decimal form (`1000` is `"1k"`).
pub fn bytes(b: u64) -> String {
    if b < 1024 {
        return decimal(b, 0);
    }
    if b % 1024 != 0 {
        // Go prints an integer that no binary suffix divides as digits.
        return b.to_string();
    }
    let mut v = b;
    let mut i = 0;
    while v % 1024 == 0 && i < 6 {
        v /= 1024;
        i += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][i];
    format!("{v}{suffix}")
}

/// Go's `time.Duration.String()` for a non-negative duration in
/// milliseconds (the store's resolution).
pub fn go_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let mut seconds = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        seconds.push('.');
        seconds.push_str(f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{h}h{m}m{seconds}s")
    } else if m > 0 {
        format!("{m}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_as_metrics_server_prints_it() {
        for (n, want) in [
            (608_075_001, "608075001n"),
            (123_456_789, "123456789n"),
            (12_340_000, "12340u"),
            (250_000_000, "250m"),
            (1_000_000_000, "1"),
            (1_500_000_000, "1500m"),
            (5_000_000_000_000, "5k"),
            (0, "0"),
            (10, "10n"),
        ] {
            assert_eq!(nanocores(n), want, "{n}");
        }
    }

    #[test]
    fn values_as_prometheus_adapter_prints_them() {
        for (v, want) in [
            (0.5, "500m"),
            (20.5, "20500m"),
            (1.0, "1"),
            (1500.0, "1500"),
            (1.5e6, "1500k"),
            (0.0001, "0"),
            (-2.5, "-2500m"),
            (f64::NAN, "0"),
        ] {
            assert_eq!(millis(v), want, "{v}");
        }
    }

    #[test]
    fn memory_in_binary_units() {
        for (b, want) in [
            (4096, "4Ki"),
            (2_147_483_648, "2Gi"),
            (123_456_789, "123456789"),
            (2000, "2000"),
            (123_456_000, "123456000"),
            (1000, "1k"),
            (512, "512"),
            (0, "0"),
            (12_640_256, "12344Ki"),
            (1_048_576, "1Mi"),
        ] {
            assert_eq!(bytes(b), want, "{b}");
        }
    }

    #[test]
    fn durations_as_go_prints_them() {
        for (ms, want) in [
            (15_000, "15s"),
            (15_012, "15.012s"),
            (14_998, "14.998s"),
            (60_000, "1m0s"),
            (300_000, "5m0s"),
            (3_723_500, "1h2m3.5s"),
            (1, "1ms"),
            (0, "0s"),
        ] {
            assert_eq!(go_duration(ms), want, "{ms}");
        }
    }
}
