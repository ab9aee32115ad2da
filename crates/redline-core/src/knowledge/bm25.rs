//! A small BM25 index. Code identifiers are split into their parts (`InsecureSkipVerify` ->
//! `insecureskipverify insecure skip verify`) so that prose and code match each other; terms are
//! stemmed (`unpickling` and `unpickled` are one term), and a query's words are widened with a
//! few synonyms (`unpickling` also asks for `deserialization`), so that plain words find the
//! entry that uses the technical ones.

use std::collections::HashMap;

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Words too common in guidance and code to say anything.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "if", "in", "into", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "was", "with", "not", "no", "use", "do",
    "does", "you", "your", "we", "can", "will", "when", "self", "this", "return", "const", "let",
    "var", "def", "func", "function", "true", "false", "none", "null", "nil", "err",
];

/// Lower-cased terms of `text`: each identifier whole and split at `_`, `-` and case changes.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.is_empty() {
            continue;
        }
        let lower = word.to_lowercase();
        let parts = crate::text::split_identifier(word);
        if parts.len() > 1 {
            for p in &parts {
                push_term(&mut out, p);
            }
        }
        push_term(&mut out, &lower.replace('_', ""));
    }
    out
}

fn push_term(out: &mut Vec<String>, t: &str) {
    if t.len() < 2
        || t.len() > 40
        || STOPWORDS.contains(&t)
        || t.chars().all(|c| c.is_ascii_digit())
    {
        return;
    }
    out.push(t.to_string());
}

/// A term's stem: common English suffixes removed (a light Porter-style stemmer; the same on both
/// sides of the index, so it need not be linguistically exact).
pub fn stem(term: &str) -> String {
    let t = term;
    let n = t.len();
    let cut = |suffix: &str, min: usize| t.len() >= min + suffix.len() && t.ends_with(suffix);
    let mut s = if cut("izations", 3) {
        format!("{}ize", &t[..n - 8])
    } else if cut("ization", 3) {
        format!("{}ize", &t[..n - 7])
    } else if cut("ations", 3) {
        format!("{}ate", &t[..n - 6])
    } else if cut("ation", 3) {
        format!("{}ate", &t[..n - 5])
    } else if cut("ities", 3) || cut("ility", 3) {
        t[..n - 5].to_string()
    } else if cut("ies", 2) {
        format!("{}y", &t[..n - 3])
    } else if cut("sses", 2) {
        t[..n - 2].to_string()
    } else if cut("ing", 3) {
        t[..n - 3].to_string()
    } else if cut("ed", 3) || cut("ly", 3) {
        t[..n - 2].to_string()
    } else if cut("s", 3) && !t.ends_with("ss") && !t.ends_with("us") && !t.ends_with("is") {
        t[..n - 1].to_string()
    } else {
        t.to_string()
    };
    // `serialize`/`serializing`, `pickle`/`pickling`: drop a final e, and a doubled consonant.
    if s.len() > 4 && s.ends_with('e') {
        s.pop();
    }
    let b = s.as_bytes();
    if s.len() > 4 && b[b.len() - 1] == b[b.len() - 2] && !b"lsz".contains(&b[b.len() - 1]) {
        s.pop();
    }
    s
}

/// Plain words and the technical terms the guidance uses for them (stems on both sides).
const SYNONYMS: &[(&str, &[&str])] = &[
    ("unpickl", &["pickl", "deserializ"]),
    ("pickl", &["deserializ"]),
    ("unmarshal", &["deserializ"]),
    ("unseriz", &["deserializ"]),
    ("network", &["untrust", "input"]),
    ("remot", &["untrust", "input"]),
    ("receiv", &["untrust", "input"]),
    ("attack", &["untrust", "input"]),
    ("shell", &["command", "subprocess"]),
    ("databas", &["sql", "query"]),
    ("queri", &["sql"]),
    ("markup", &["html", "xss"]),
    ("script", &["xss"]),
    ("escap", &["xss", "sanitiz"]),
    ("regular", &["regex"]),
    ("backtrack", &["regex", "redo"]),
    ("certificat", &["tls"]),
    ("ssl", &["tls"]),
    ("entity", &["xml", "xxe"]),
    ("zip", &["archiv", "travers"]),
    ("tar", &["archiv", "travers"]),
    ("extract", &["archiv", "travers"]),
    ("upload", &["path", "file"]),
    ("directory", &["path", "travers"]),
    ("guess", &["random"]),
    ("predict", &["random"]),
    ("permission", &["authoriz", "access"]),
    ("owner", &["authoriz", "access"]),
    ("forward", &["redirect"]),
    ("internal", &["ssrf"]),
    ("metadata", &["ssrf"]),
];

/// The index's terms of a text: its tokens, stemmed.
fn terms(text: &str) -> Vec<String> {
    tokenize(text).iter().map(|t| stem(t)).collect()
}

/// A query's terms: its stems, and the synonyms of those that have some.
fn query_terms(query: &str) -> Vec<String> {
    let mut out = terms(query);
    let extra: Vec<String> = out
        .iter()
        .flat_map(|t| {
            SYNONYMS
                .iter()
                .filter(move |(w, _)| w == t)
                .flat_map(|(_, more)| more.iter().map(|m| m.to_string()))
        })
        .collect();
    out.extend(extra);
    out
}

/// An inverted index over documents, scored with BM25.
pub struct Index {
    postings: HashMap<String, Vec<(u32, u32)>>,
    doc_len: Vec<u32>,
    avg_len: f64,
}

impl Index {
    /// Indexes `docs`; a document's number is its position.
    pub fn build(docs: &[String]) -> Index {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            let terms = terms(d);
            doc_len.push(terms.len() as u32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf {
                postings.entry(t).or_default().push((i as u32, n));
            }
        }
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            doc_len.iter().map(|&l| l as f64).sum::<f64>() / doc_len.len() as f64
        };
        Index {
            postings,
            doc_len,
            avg_len,
        }
    }

    /// Documents scored against `query`, best first (documents sharing no term are left out).
    pub fn search(&self, query: &str) -> Vec<(usize, f64)> {
        let n = self.doc_len.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        let mut terms = query_terms(query);
        terms.sort();
        terms.dedup();
        for t in terms {
            let Some(list) = self.postings.get(&t) else {
                continue;
            };
            let df = list.len() as f64;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in list {
                let tf = tf as f64;
                let len = self.doc_len[doc as usize] as f64;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
                *scores.entry(doc).or_default() += s;
            }
        }
        let mut out: Vec<(usize, f64)> = scores.into_iter().map(|(d, s)| (d as usize, s)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_identifiers() {
        let t = tokenize("InsecureSkipVerify: true, dangerouslySetInnerHTML read_file HTTPServer");
        for want in [
            "insecureskipverify",
            "insecure",
            "skip",
            "verify",
            "dangerously",
            "inner",
            "html",
            "readfile",
            "read",
            "file",
            "http",
            "server",
        ] {
            assert!(t.contains(&want.to_string()), "{want} missing from {t:?}");
        }
    }

    #[test]
    fn stems_join_word_forms() {
        for (a, b) in [
            ("unpickling", "unpickled"),
            ("serialize", "serializing"),
            ("deserialization", "deserialize"),
            ("queries", "query"),
            ("redirects", "redirect"),
            ("pickle", "pickling"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("class"), "class");
    }

    #[test]
    fn ranks_the_matching_document_first() {
        let docs = vec![
            "SQL injection: pass values as query parameters to execute".to_string(),
            "Disable TLS verification: InsecureSkipVerify and verify=False".to_string(),
            "Mutable default arguments are shared between calls".to_string(),
        ];
        let idx = Index::build(&docs);
        assert_eq!(idx.search("tls.Config{InsecureSkipVerify: true}")[0].0, 1);
        assert_eq!(idx.search("cursor.execute(f\"SELECT\")")[0].0, 0);
        assert!(idx.search("zzzz").is_empty());
    }
}
