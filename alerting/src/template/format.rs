//! Numbers and `printf` as Go's `fmt` writes them, so rendered text
//! matches what Prometheus would send (`1e+06`, `%.4g`, `%5.2f`).

use super::exec::Value;

/// Go's `%e`/`%f`/`%g` of `v` with `prec` digits (`None`: shortest).
pub fn go_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    match verb {
        'f' => match prec {
            Some(p) => format!("{v:.p$}"),
            None => format!("{v}"),
        },
        'e' => exp_form(v, prec),
        _ => {
            // %g: %e when the exponent is < -4 or >= the precision (6 when
            // shortest), trailing zeros dropped.
            let (digits, exp, eprec) = match prec {
                Some(p) => {
                    let p = p.max(1);
                    let (d, e) = split_exp(&format!("{:.*e}", p - 1, v));
                    (d, e, p as i32)
                }
                None => {
                    let (d, e) = split_exp(&format!("{v:e}"));
                    (d, e, 6)
                }
            };
            if exp < -4 || exp >= eprec {
                let mantissa = trim_zeros(&digits);
                format!(
                    "{mantissa}e{}{:02}",
                    if exp < 0 { '-' } else { '+' },
                    exp.abs()
                )
            } else if prec.is_none() {
                format!("{v}")
            } else {
                let decimals = (eprec - 1 - exp).max(0) as usize;
                trim_zeros(&format!("{v:.decimals$}"))
            }
        }
    }
}

fn split_exp(s: &str) -> (String, i32) {
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s.to_string(), 0),
    }
}

fn trim_zeros(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn exp_form(v: f64, prec: Option<usize>) -> String {
    let s = match prec {
        Some(p) => format!("{v:.p$e}"),
        None => format!("{v:e}"),
    };
    let (m, e) = split_exp(&s);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q
/// %x %X %t %%`, with flags `-+ 0`, width and precision.
pub fn go_printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            chars.next();
        }
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                chars.next();
            }
            prec = Some(p);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let num = |a: &Value| a.as_f64().ok();
        let mut s = match (verb, arg) {
            ('v', _) | ('s', _) => {
                let s = arg.print();
                match (verb, prec) {
                    ('s', Some(p)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('q', _) => format!("{:?}", arg.print()),
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Int(n)) => n.to_string(),
            ('d', Value::Num(n)) => format!("%!d(float64={})", go_float(*n, 'g', None)),
            ('x', Value::Int(n)) => format!("{n:x}"),
            ('X', Value::Int(n)) => format!("{n:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f' | 'F' | 'e' | 'g', a) if num(a).is_some() && !matches!(a, Value::Str(_)) => {
                let v = num(a).unwrap_or(f64::NAN);
                let v_verb = if verb == 'F' { 'f' } else { verb };
                let p = match verb {
                    'f' | 'F' | 'e' => Some(prec.unwrap_or(6)),
                    _ => prec,
                };
                go_float(v, v_verb, p)
            }
            (v, a) => format!("%!{v}({}={})", super::exec::type_name(a), a.print()),
        };
        let numeric = matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g' | 'x' | 'X');
        if numeric && !s.starts_with('-') && !s.starts_with('%') {
            if plus {
                s.insert(0, '+');
            } else if space {
                s.insert(0, ' ');
            }
        }
        let len = s.chars().count();
        if let Some(w) = width.filter(|&w| w > len) {
            let pad = w - len;
            if minus {
                s.push_str(&" ".repeat(pad));
            } else if zero && numeric {
                let sign = s.starts_with(['-', '+', ' ']);
                let at = usize::from(sign);
                s.insert_str(at, &"0".repeat(pad));
            } else {
                s.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", super::exec::type_name(a), a.print()))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
