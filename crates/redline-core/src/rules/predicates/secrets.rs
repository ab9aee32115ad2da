//! Secrets: credentials written into code, secrets compared with `==`, password hashing and
//! random values that must be unguessable.

use super::*;

pub(super) static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)passw(or)?d|passwd|passphrase|\bpwd\b|_pwd|pwd_|Pwd\b|\bpw\b").unwrap()
});

pub(super) static TOKEN_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)token|secret|passw|pwd|reset|otp|nonce|salt|session|csrf|api_?key|apikey|invite|verif|signature|coupon|voucher|activation|magic_?link|one_?time|recovery|credential|auth_?code").unwrap()
});

pub(super) static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)pass(word|wd|phrase)?$|passw(or)?d|pwd|secret|token|api_?key|apikey|access_?key|private_?key|client_?secret|auth_?key|credential|signing_?key|encryption_?key|jwt_?key|bearer|dsn|conn(ection)?_?str").unwrap()
});

pub(super) static NOT_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)(_|\b|[a-z])(url|uri|endpoint|path|file|dir|name|field|label|message|msg|text|header|param|prefix|suffix|length|len|type|kind|env|var|key_?name|template|route|regex|pattern|format|placeholder|hint|error|id|count|ttl|expiry|expires|timeout|mode|policy|query|column|table|key_?id|cookie_?name)s?$").unwrap()
});

pub(super) static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)^(changeme|change_?me|password|passw0rd|secret|example|dummy|test|testing|none|null|redacted|placeholder|todo|fixme|xxx+|\*+|\.+|-+)$|^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$|^%\(.*\)s$|your[_-]|example|placeholder|xxxx|dummy|fake|sample|<|>|\$\{|\{\{").unwrap()
});

/// The shapes of well-known keys, each with a literal every match of it holds: a string with
/// none of the literals cannot match, so the joined pattern compiles only when one might.
const KEY_SHAPE_LIST: [(&str, &str); 11] = [
    ("AKIA", r"AKIA[0-9A-Z]{16}"), // AWS access key ids
    ("ASIA", r"ASIA[0-9A-Z]{16}"),
    ("gh", r"gh[pousr]_[A-Za-z0-9]{30,}"), // GitHub tokens
    ("github_pat_", r"github_pat_[A-Za-z0-9_]{40,}"),
    ("sk_live_", r"sk_live_[A-Za-z0-9]{16,}"), // Stripe
    ("rk_live_", r"rk_live_[A-Za-z0-9]{16,}"),
    ("sk-", r"sk-[A-Za-z0-9_-]{20,}"),         // OpenAI-style keys
    ("xox", r"xox[abposr]-[A-Za-z0-9-]{10,}"), // Slack
    ("AIza", r"AIza[0-9A-Za-z_-]{35}"),        // Google API keys
    (
        "-----BEGIN ",
        r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----\s*[A-Za-z0-9+/=\s\\n]{40,}",
    ),
    // Credentials in a connection URL.
    ("://", r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@$<{]{3,}@"),
];

pub(super) static KEY_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    let shapes: Vec<&str> = KEY_SHAPE_LIST.iter().map(|(_, shape)| *shape).collect();
    ascii_regex(&shapes.join("|")).unwrap()
});

/// A hash call whose input is a password: its arguments (and what the statement feeds it after the
/// call, `.update(pw)`) name a password; or, when they name nothing, the function is about passwords.
/// Hashing a token, a file or a payload is not password storage.
pub(super) fn password_context<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let stmt = a.statement(n);
    let args = n
        .child_by_field_name("arguments")
        .map(|x| a.text(x))
        .unwrap_or("");
    let after = &a.src[n.end_byte().min(stmt.end_byte())..stmt.end_byte()];
    let input = format!("{args} {after}");
    if PASSWORD.is_match(&input) {
        return true;
    }
    static NOT_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)(^|[^a-z])(token|nonce|otp|code|key|secret|content|data|body|file|chunk|payload|url|email|bytes|blob|etag|checksum)").unwrap()
    });
    if NOT_PASSWORD.is_match(&input) {
        return false;
    }
    PASSWORD.is_match(a.text(stmt)) || PASSWORD.is_match(a.function_name(n))
}

/// A random value that must be unguessable: its statement names a token, secret or code, or its
/// function does (and the statement is not about jitter, delays or sampling).
pub(super) fn token_context<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    static BENIGN: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)jitter|delay|backoff|sleep|retry|sample|shuffle|colou?r|weight|timeout|interval|port\b|percent|ratio|chance|probability").unwrap()
    });
    let stmt = a.text(a.statement(n));
    if BENIGN.is_match(stmt) {
        return false;
    }
    TOKEN_WORDS.is_match(stmt) || TOKEN_WORDS.is_match(a.function_name(n))
}

/// Words that name a secret compared for authentication.
pub(super) fn names_secret(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    [
        "signature",
        "sig",
        "digest",
        "hexdigest",
        "hmac",
        "mac",
        "secret",
        "otp",
        "csrf",
        "apikey",
        "passhash",
    ]
    .iter()
    .any(|w| has(w))
        || (has("api") && has("key"))
        || (has("password") && has("hash"))
        || ((has("access")
            || has("auth")
            || has("webhook")
            || has("bearer")
            || has("session")
            || has("reset")
            || has("csrf"))
            && has("token"))
}

/// Words that may name the other side of such a comparison.
pub(super) fn names_secretish(ws: &[String]) -> bool {
    names_secret(ws)
        || ws.iter().any(|w| {
            matches!(
                w.as_str(),
                "token"
                    | "key"
                    | "hash"
                    | "sign"
                    | "signed"
                    | "provided"
                    | "received"
                    | "given"
                    | "computed"
                    | "expected"
                    | "header"
                    | "supplied"
                    | "incoming"
                    | "stored"
            )
        })
}

/// `==` on a signature, token or key: a comparison that leaks timing.
pub(super) fn secret_compare<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let (l, r) = match (
        n.child_by_field_name("left"),
        n.child_by_field_name("right"),
    ) {
        (Some(l), Some(r)) => (l, r),
        _ => {
            // Python comparison_operator and Go `bytes.Equal(a, b)` keep operands as plain children.
            let node = if matches!(n.kind(), "call" | "call_expression") {
                n.child_by_field_name("arguments").unwrap_or(n)
            } else {
                n
            };
            let mut c = node.walk();
            let ch: Vec<Node> = node.named_children(&mut c).collect();
            if ch.len() != 2 {
                return false;
            }
            (ch[0], ch[1])
        }
    };
    if n.kind() == "comparison_operator" || n.kind() == "binary_expression" {
        let op = a.text(n)[l.end_byte() - n.start_byte()..r.start_byte() - n.start_byte()].trim();
        if !matches!(op, "==" | "!=" | "===" | "!==") {
            return false;
        }
    }
    static NOT_SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)(type|kind|scheme|alg|algorithm|length|count|status|prefix|version|name|format)\b|(\bid|_id|Id|ID|_ids|Ids)$").unwrap()
    });
    let trivial = |x: Node<'t>| {
        let t = a.text(x);
        a.is_constant(x)
            || t.starts_with("len(")
            || t.ends_with(".length")
            || t.starts_with("typeof")
            || NOT_SECRET_VALUE.is_match(t)
    };
    if trivial(l) || trivial(r) {
        return false;
    }
    // Two results of the same function (`inspect.signature(f) == inspect.signature(g)`) are values of
    // one kind being compared, not a secret checked against input.
    let callee = |x: Node<'t>| x.child_by_field_name("function").map(|f| a.text(f));
    if matches!(l.kind(), "call" | "call_expression") && callee(l) == callee(r) {
        return false;
    }
    let (lw, rw) = (words(a.text(l)), words(a.text(r)));
    if (names_secret(&lw) && names_secretish(&rw)) || (names_secret(&rw) && names_secretish(&lw)) {
        return true;
    }
    // `sign(payload, secret) == received`: a freshly computed signature checked against a value.
    let signs = |x: Node<'t>| {
        matches!(x.kind(), "call" | "call_expression")
            && callee(x).is_some_and(|f| {
                let last = f.rsplit(['.', ':']).next().unwrap_or(f);
                matches!(
                    last,
                    "sign"
                        | "hmac"
                        | "createHmac"
                        | "signature"
                        | "computeSignature"
                        | "digest"
                        | "hexdigest"
                ) && words(a.text(x)).iter().any(|w| w == "secret" || w == "key")
            })
    };
    let plain = |x: Node<'t>| {
        matches!(
            x.kind(),
            "identifier" | "member_expression" | "attribute" | "selector_expression"
        )
    };
    if (signs(l) && plain(r)) || (signs(r) && plain(l)) {
        return true;
    }
    // `parts.v1 !== expected` in a function that computes an HMAC or a signature.
    static SIGNING: LazyLock<Regex> =
        LazyLock::new(|| ascii_regex(r"(?i)hmac|signature|createHmac|\.sign\(").unwrap());
    let expected = |ws: &[String]| ws.iter().any(|w| w == "expected" || w == "computed");
    (expected(&lw) || expected(&rw)) && SIGNING.is_match(a.text(a.enclosing_function(n)))
}

/// A string literal that is a credential: a secret-looking name bound to a secret-looking value,
/// or a value with a known key shape.
pub(super) fn secret_literal<'t>(
    a: &Analysis<'t>,
    n: Node<'t>,
    captures: &[(&str, Node<'t>)],
) -> bool {
    let raw = a.text(n);
    let value = raw.trim_matches(|c| c == '"' || c == '\'' || c == '`');
    let value = value
        .strip_prefix(['b', 'r', 'f'])
        .map(|v| v.trim_matches(|c| c == '"' || c == '\''))
        .unwrap_or(value);
    if n.kind() == "string" && {
        let mut c = n.walk();
        n.named_children(&mut c)
            .any(|ch| ch.kind() == "interpolation" || ch.kind() == "template_substitution")
    } {
        return false;
    }
    if known_secret_shape(value) {
        return true;
    }
    let Some(name) = captures
        .iter()
        .find(|(c, _)| *c == "name")
        .map(|(_, n)| a.text(*n))
    else {
        return false;
    };
    let name = name.trim_matches(|c| c == '"' || c == '\'' || c == '`');
    // A dictionary key like "AWS::SecretsManager::Secret" names a thing, not a variable holding a secret.
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '>' | '[' | ']' | '$'))
    {
        return false;
    }
    let last = name.rsplit(['.', '>']).next().unwrap_or(name);
    // `ErrBadPassword = "..."` is an error message.
    if last.starts_with("Err") || last.starts_with("err") || last.starts_with("ERR_") {
        return false;
    }
    if !SECRET_NAME.is_match(last) || NOT_SECRET_NAME.is_match(last) {
        return false;
    }
    if value.len() < 6 || value.contains(char::is_whitespace) || PLACEHOLDER.is_match(value) {
        return false;
    }
    // An identifier-like value (`"password_reset_link_sent"`, an event or error code, a dotted
    // class path) names something; a secret is not a run of words.
    if cached_regex!(r"^[A-Za-z]+([_.:-][A-Za-z]+)+$").is_match(value) {
        return false;
    }
    // An environment variable's name, a path, a URL without credentials, a format string.
    if cached_regex!(r"^[A-Z][A-Z0-9_]+$").is_match(value)
        || value.contains('/')
        || value.contains('%')
        || value.contains("{}")
    {
        return false;
    }
    let is_password = PASSWORD.is_match(last);
    if is_password {
        return value.len() >= 6;
    }
    value.len() >= 12 && entropy(value) >= 3.0 && value.chars().any(|c| c.is_ascii_digit())
        || value.len() >= 24 && entropy(value) >= 3.5
}

/// A value with the shape of a real credential, that is not a documented example or a placeholder.
pub(super) fn known_secret_shape(value: &str) -> bool {
    static EXAMPLE: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)example|dummy|fake|sample|placeholder|xxxx|your[_-]|redacted|changeme")
            .unwrap()
    });
    static URL_CREDENTIALS: LazyLock<Regex> =
        LazyLock::new(|| ascii_regex(r"://[^/\s:@]+:([^/\s:@]+)@").unwrap());
    if !KEY_SHAPE_LIST
        .iter()
        .any(|(literal, _)| value.contains(literal))
    {
        return false;
    }
    let Some(m) = KEY_SHAPES.find(value) else {
        return false;
    };
    if EXAMPLE.is_match(m.as_str()) {
        return false;
    }
    // Credentials in a URL to a documentation or test host, or percent-encoded ones, are an
    // example of the URL syntax.
    static TEST_HOST: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)@(localhost|127\.0\.0\.1|\[::1\]|[\w.-]*(example|dummy|fake|test|invalid|foo|bar)[\w.-]*)").unwrap()
    });
    if m.as_str().contains("://") && (TEST_HOST.is_match(value) || m.as_str().contains('%')) {
        return false;
    }
    if let Some(c) = URL_CREDENTIALS.captures(m.as_str()) {
        let pw = &c[1];
        if PLACEHOLDER.is_match(pw)
            || matches!(
                pw.to_ascii_lowercase().as_str(),
                "pass"
                    | "password"
                    | "pwd"
                    | "secret"
                    | "user"
                    | "postgres"
                    | "root"
                    | "admin"
                    | "guest"
            )
        {
            return false;
        }
    }
    true
}

pub(super) fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shape_passes_the_literal_precheck() {
        // One value of each shape: the precheck must not hide a key the pattern finds.
        let keys = [
            "AKIAQWERTYUIOPASDFGH",
            "ASIAQWERTYUIOPASDFGH",
            "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk-proj4eC39HqLyjWDarjtT1zdp7dc",
            "xoxb-123456789012-abcdefghijkl",
            "AIzaSyD4eC39HqLyjWDarjtT1zdp7dcQwErTyUi",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq4ZqWmHnY1Zk9dF3pQ2rS7tU9vW1xY3zA5bC7dE9f",
            "postgres://app:s3cr3tPassw0rd@db.internal:5432/app",
        ];
        for k in keys {
            assert!(KEY_SHAPES.is_match(k), "{k} is not a key shape");
            assert!(known_secret_shape(k), "{k} was skipped");
        }
        assert!(!known_secret_shape("an ordinary message"));
    }
}
