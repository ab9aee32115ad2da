//! The data boundary: secrets are replaced by stable placeholders (`<secret:1>`) in everything sent
//! to an LLM provider, so that the model can still say "this line hard-codes a secret" and its
//! comment lands on the right line, while the secret itself never leaves.
//!
//! Shapes covered: cloud and API keys by their known prefixes (AWS access key ids and secret keys,
//! GitHub, Stripe, OpenAI, Slack, Google, SendGrid, npm, PyPI tokens), private key blocks, JWTs,
//! passwords in connection URLs, and values assigned to secret-looking names (password, secret,
//! token, api_key, ...) in code and in config files (`KEY=value`, `key: value`).

use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

static KNOWN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b",
        r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
        r"|\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b",
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        r"|\bAIza[0-9A-Za-z_-]{35}\b",
        r"|\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b",
        r"|\bnpm_[A-Za-z0-9]{36}\b|\bpypi-[A-Za-z0-9_-]{40,}\b",
        r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"
    ))
    .unwrap()
});
/// `scheme://user:PASSWORD@host`: the password group.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\x22]+:([^/\s@'\x22]{3,})@").unwrap()
});
/// `name = "value"`, `name: 'value'`, `NAME=value` where the name looks secret: the value group.
static ASSIGNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b([\w.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?key|credentials?|signing[_-]?key|encryption[_-]?key)[\w.-]*)\b",
        r#"["']?\s*(?::=|=|:)\s*(?:["'`]([^"'`\n]{6,})["'`]|([A-Za-z0-9+/=_\-.!@#$%^&*]{8,})\s*$)"#
    ))
    .unwrap()
});
/// On a line naming a secret, a quoted literal that looks like a key (a fallback default such as
/// `process.env.API_KEY || "..."` or `os.getenv("TOKEN", "...")`).
static SECRET_NAME_ON_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)passw(?:or)?d|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|signing[_-]?key").unwrap()
});
static KEYLIKE_LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"["'`]([A-Za-z0-9_\-+/=.]{12,})["'`]"#).unwrap());
/// The AWS secret access key: 40 base64 characters next to its name.
static AWS_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)aws_?secret_?(?:access_?)?key[\w]*["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#)
        .unwrap()
});
/// Values that are not secrets even under a secret-looking name.
static NOT_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:^(changeme|password|secret|example|dummy|test|testing|none|null|true|false|redacted|placeholder|xxx+|\*+)$|^<.*>$|^\$\{|^\{\{|^%\(|^os\.|^process\.env|^env\(|getenv|environ|\(|example|your[_-]|<secret:\d+>)|^[A-Z][A-Z0-9_]+$").unwrap()
});

static NOT_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(type|kind|name|id|url|uri|path|file|field|label|header|prefix|suffix|format|pattern|template|count|len|length|range|env|var|endpoint|policy|mode|hint|message|msg|error|regex|ttl|expiry|expires|timeout)s?$").unwrap()
});

/// Replaces secrets with placeholders, the same secret always with the same one.
#[derive(Default)]
pub struct Redactor {
    placeholders: HashMap<String, usize>,
    /// How many replacements were made (each occurrence counts).
    pub count: usize,
}

impl Redactor {
    /// A new redactor with no secrets seen.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    fn placeholder(&mut self, secret: &str) -> String {
        let n = self.placeholders.len() + 1;
        let id = *self.placeholders.entry(secret.to_string()).or_insert(n);
        self.count += 1;
        format!("<secret:{id}>")
    }

    /// `text` with every secret replaced.
    pub fn redact(&mut self, text: &str) -> String {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for m in KNOWN.find_iter(text) {
            spans.push((m.start(), m.end()));
        }
        for re in [&*URL_PASSWORD, &*AWS_SECRET] {
            for c in re.captures_iter(text) {
                if let Some(g) = c.get(1) {
                    if !NOT_SECRET.is_match(g.as_str()) {
                        spans.push((g.start(), g.end()));
                    }
                }
            }
        }
        for line_start in line_starts(text) {
            let line_end = text[line_start..]
                .find('\n')
                .map(|i| line_start + i)
                .unwrap_or(text.len());
            let line = &text[line_start..line_end];
            if SECRET_NAME_ON_LINE.is_match(line) {
                for c in KEYLIKE_LITERAL.captures_iter(line) {
                    let g = c.get(1).expect("group 1");
                    let v = g.as_str();
                    // A key mixes letters and digits; names, paths and env var names do not.
                    let mixed = v.chars().any(|ch| ch.is_ascii_digit())
                        && v.chars().any(|ch| ch.is_ascii_lowercase());
                    if mixed && !NOT_SECRET.is_match(v) && !v.contains('/') && !v.contains('.') {
                        spans.push((line_start + g.start(), line_start + g.end()));
                    }
                }
            }
            for c in ASSIGNED.captures_iter(line) {
                // Quoted: a literal (not a format string). Unquoted (`KEY=value` in config files):
                // only values that mix letters and digits, so that code (`token = tok`) is left be.
                // `token_type`, `password_field`, `secret_name` name things, not secrets.
                if NOT_SECRET_NAME.is_match(c.get(1).map(|m| m.as_str()).unwrap_or("")) {
                    continue;
                }
                let (g, quoted) = match (c.get(2), c.get(3)) {
                    (Some(g), _) => (g, true),
                    (None, Some(g)) => (g, false),
                    _ => continue,
                };
                let v = g.as_str().trim();
                let plausible = if quoted {
                    !v.contains('%') && !v.contains('{')
                } else {
                    v.chars().any(|ch| ch.is_ascii_digit())
                        && v.chars().any(|ch| ch.is_ascii_alphabetic())
                        && !v.contains('.')
                        && !v.contains('(')
                };
                if plausible && !NOT_SECRET.is_match(v) && !v.contains(' ') {
                    spans.push((line_start + g.start(), line_start + g.end()));
                }
            }
        }
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a < last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (a, b) in merged {
            out.push_str(&text[at..a]);
            let secret = &text[a..b];
            out.push_str(&self.placeholder(secret));
            at = b;
        }
        out.push_str(&text[at..]);
        out
    }
}

fn line_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(
        text.match_indices('\n')
            .map(|(i, _)| i + 1)
            .filter(move |&i| i < text.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_replaced_and_placeholders_are_stable() {
        let text = concat!(
            "AWS_ACCESS_KEY_ID = \"AKIAQWERTYUIOPASDFGH\"\n",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQWERTYKQ\n",
            "gh = 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5'\n",
            "DATABASE_URL=postgres://billing:Hunter2Pass@db:5432/billing\n",
            "db_password: 's3cr3t-Pa55'\n",
            "API_TOKEN=9f8a7sd6f5a4s3d2f1g0\n",
            "again = 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5'\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdef\n-----END RSA PRIVATE KEY-----\n",
        );
        let mut r = Redactor::new();
        let out = r.redact(text);
        for secret in [
            "AKIAQWERTYUIOPASDFGH",
            "wJalrXUtnFEMI",
            "ghp_aB3d",
            "Hunter2Pass",
            "s3cr3t-Pa55",
            "9f8a7sd6f5a4s3d2f1g0",
            "MIIEowIBAAKCAQEA",
        ] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        assert_eq!(out.matches("<secret:3>").count(), 2, "{out}");
        assert_eq!(
            out.lines().count(),
            text.lines().count() - 2,
            "lines are kept (the key block is one placeholder)"
        );
    }

    #[test]
    fn ordinary_code_is_left_alone() {
        let code = "password = request.form['password']\ntoken = os.environ['TOKEN']\nconst apiKey = process.env.API_KEY;\nPASSWORD_FIELD = \"password\"\nsecret_name: str = \"db/primary\"\nif token == expected_token:\n";
        let mut r = Redactor::new();
        assert_eq!(r.redact(code), code);
        assert_eq!(r.count, 0);
    }
}
