//! A hand-written JSON object writer: one flat object per run, keys in insertion
//! order (no serde needed for a report this simple).

use std::fmt::Write as _;

/// One JSON value of a report field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string.
    Str(String),
    /// An unsigned integer.
    UInt(u64),
    /// A float (non-finite values are written as `null`).
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::UInt(v as u64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// Writes `s` as a JSON string literal.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Value {
    fn write(&self, out: &mut String) {
        match self {
            Value::Str(s) => write_str(out, s),
            Value::UInt(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_finite() => {
                // Three decimals are plenty for µs and ops/s; trim trailing zeros.
                let s = format!("{v:.3}");
                let s = s.trim_end_matches('0').trim_end_matches('.');
                out.push_str(s);
            }
            Value::Float(_) => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
}

/// Renders `fields` as one JSON object on one line.
pub fn object(fields: &[(String, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, k);
        out.push(':');
        v.write(&mut out);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn renders_every_kind_and_escapes() {
        let f = vec![
            ("a".to_string(), Value::from("x\"y\\z\n\u{1}")),
            ("n".to_string(), Value::from(42u64)),
            ("f".to_string(), Value::from(1.5)),
            ("g".to_string(), Value::from(2.0)),
            ("nan".to_string(), Value::from(f64::NAN)),
            ("b".to_string(), Value::from(true)),
        ];
        assert_eq!(
            object(&f),
            r#"{"a":"x\"y\\z\n\u0001","n":42,"f":1.5,"g":2,"nan":null,"b":true}"#
        );
        assert_eq!(object(&[]), "{}");
    }
}
