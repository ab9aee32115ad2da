//! Lenient reading of what models emit: tool calls written as JSON in the message text (bare, in a
//! json code fence, or in `<tool_call>` tags), arguments of the wrong type, unknown severities. Every
//! repair is counted, so the review's record shows how the model behaved.

use redline_core::model::{Quirks, Severity, note_quirk as note};
use serde_json::Value;

/// Tool calls the model wrote as text: `{"name": ..., "arguments": {...}}` objects, alone or in a
/// list, bare, fenced or in `<tool_call>` tags. Returns (name, arguments JSON text) pairs.
pub fn tool_calls_in_text(text: &str, known: &[&str]) -> Vec<(String, String)> {
    let mut candidates: Vec<&str> = Vec::new();
    for part in text.split("<tool_call>").skip(1) {
        candidates.push(part.split("</tool_call>").next().unwrap_or(part));
    }
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        candidates.push(&after[body_start..body_start + end]);
        rest = &after[body_start + end + 3..];
    }
    if candidates.is_empty() {
        candidates.push(text);
    }
    let mut out = Vec::new();
    for c in candidates {
        for value in json_values(c) {
            collect_calls(&value, known, &mut out);
        }
    }
    out
}

fn collect_calls(v: &Value, known: &[&str], out: &mut Vec<(String, String)>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_calls(i, known, out)),
        Value::Object(o) => {
            let f = o.get("function").filter(|f| f.is_object()).unwrap_or(v);
            let name = f
                .get("name")
                .or_else(|| o.get("tool"))
                .and_then(Value::as_str);
            if let Some(name) = name.filter(|n| known.contains(n)) {
                let args = f
                    .get("arguments")
                    .or_else(|| f.get("parameters"))
                    .or_else(|| o.get("args"))
                    .cloned()
                    .unwrap_or(Value::Object(Default::default()));
                let args = match args {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.push((name.to_string(), args));
            }
        }
        _ => {}
    }
}

/// Every JSON object in `text` (bare, fenced, or among prose), outermost first.
pub fn json_objects(text: &str) -> Vec<Value> {
    json_values(text)
        .into_iter()
        .filter(Value::is_object)
        .collect()
}

/// Every top-level JSON value in `text` (objects and arrays), found by brace matching.
fn json_values(text: &str) -> Vec<Value> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if (bytes[i] == b'{' || bytes[i] == b'[')
            && let Some(end) = matching(bytes, i)
            && let Ok(v) = serde_json::from_str::<Value>(&text[i..=end])
        {
            out.push(v);
            i = end + 1;
            continue;
        }
        i += 1;
    }
    out
}

fn matching(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// An integer argument, accepting "12", 12.0 and "line 12"; notes a coercion.
pub fn int_arg(v: &Value, quirks: &mut Quirks) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => {
            let digits: String = s
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let n = digits.parse().ok();
            if n.is_some() {
                note(quirks, "argument of the wrong type coerced");
            }
            n
        }
        _ => None,
    }
}

/// A number argument in [0, 1]; "0.9", "90%" and 90 are accepted.
pub fn confidence_arg(v: &Value, quirks: &mut Quirks) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            note(quirks, "argument of the wrong type coerced");
            s.trim().trim_end_matches('%').parse::<f64>().ok()
        }
        _ => None,
    }?;
    Some(if x > 1.0 {
        (x / 100.0).min(1.0)
    } else {
        x.max(0.0)
    })
}

/// A severity, mapping the words models use to the three we have.
pub fn severity_arg(v: &Value, quirks: &mut Quirks) -> Severity {
    let s = v.as_str().unwrap_or("").trim().to_ascii_lowercase();
    match s.as_str() {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        "suggestion" => Severity::Suggestion,
        other => {
            note(quirks, "unknown severity mapped");
            match other {
                "high" | "error" | "blocker" | "severe" | "security" | "major" => {
                    Severity::Critical
                }
                "low" | "minor" | "info" | "nit" | "note" | "style" | "trivial" => {
                    Severity::Suggestion
                }
                _ => Severity::Warning,
            }
        }
    }
}

/// A category as kebab-case, with common synonyms mapped onto the taxonomy.
pub fn category_arg(v: &Value, quirks: &mut Quirks) -> String {
    let raw = v.as_str().unwrap_or("").trim().to_ascii_lowercase();
    let kebab: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let mapped = match kebab.as_str() {
        "sqli" | "sql" | "sql-injection-vulnerability" => "sql-injection",
        "xss-vulnerability" | "cross-site-scripting" => "xss",
        "idor" | "authorization" | "broken-access-control" | "access-control" => {
            "missing-authorization"
        }
        "race" | "data-race" | "toctou" => "race-condition",
        "ssrf-vulnerability" | "server-side-request-forgery" => "ssrf",
        "rce" | "command-execution" | "os-command-injection" => "command-injection",
        "hardcoded-credentials" | "hard-coded-secret" | "secret" | "hardcoded-password" => {
            "hardcoded-secret"
        }
        "" => "logic-error",
        other => other,
    };
    if mapped != kebab {
        note(quirks, "category normalised");
    }
    mapped.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["post_review_comment", "finish_file"];

    #[test]
    fn finds_fenced_tagged_and_bare_calls() {
        let fenced = "Here is my call:\n```json\n{\"name\": \"post_review_comment\", \"arguments\": {\"line\": 11}}\n```";
        assert_eq!(
            tool_calls_in_text(fenced, KNOWN),
            vec![("post_review_comment".into(), "{\"line\":11}".into())]
        );
        let tagged = "<tool_call>\n{\"name\": \"finish_file\", \"arguments\": {\"summary\": \"ok\"}}\n</tool_call>";
        assert_eq!(tool_calls_in_text(tagged, KNOWN)[0].0, "finish_file");
        let bare = "I will comment. {\"function\": {\"name\": \"post_review_comment\", \"arguments\": \"{\\\"line\\\": 3}\"}} done";
        assert_eq!(
            tool_calls_in_text(bare, KNOWN),
            vec![("post_review_comment".into(), "{\"line\": 3}".into())]
        );
        assert!(tool_calls_in_text("{\"name\": \"rm_rf\", \"arguments\": {}}", KNOWN).is_empty());
        assert!(tool_calls_in_text("no json { here", KNOWN).is_empty());
    }

    #[test]
    fn coerces_arguments() {
        let mut q = Quirks::new();
        assert_eq!(int_arg(&serde_json::json!("12"), &mut q), Some(12));
        assert_eq!(int_arg(&serde_json::json!("line 7"), &mut q), Some(7));
        assert_eq!(confidence_arg(&serde_json::json!("90%"), &mut q), Some(0.9));
        assert_eq!(
            severity_arg(&serde_json::json!("HIGH"), &mut q),
            Severity::Critical
        );
        assert_eq!(
            category_arg(&serde_json::json!("SQL Injection"), &mut q),
            "sql-injection"
        );
        assert_eq!(
            category_arg(&serde_json::json!("IDOR"), &mut q),
            "missing-authorization"
        );
        assert!(q["argument of the wrong type coerced"] >= 2);
    }
}
