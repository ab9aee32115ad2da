//! SARIF 2.1.0, in the subset GitHub code scanning reads: one run, the rules that fired as
//! `tool.driver.rules`, one result per finding with a physical location and a fingerprint.

use crate::model::Review;
use crate::rules::{RuleSet, Severity};
use serde_json::{Value, json};

/// The SARIF log of a review.
pub fn sarif(review: &Review, rules: &RuleSet) -> Value {
    let mut rule_ids: Vec<String> = review.findings.iter().map(rule_id).collect();
    rule_ids.sort();
    rule_ids.dedup();
    let driver_rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let rule = rules.rules().find(|r| &r.id == id);
            let mut tags = vec!["security".to_string()];
            if let Some(cwe) = rule.and_then(|r| r.cwe.as_deref()) {
                tags.push(format!("external/cwe/{}", cwe.to_ascii_lowercase()));
            }
            json!({
                "id": id,
                "name": id.replace(['.', '-'], "_"),
                "shortDescription": {"text": rule.map(|r| r.message.as_str()).unwrap_or(id.as_str())},
                "fullDescription": {"text": rule.map(|r| format!("{} ({})", r.message, r.category)).unwrap_or_else(|| id.clone())},
                "defaultConfiguration": {"level": level(rule.map(|r| r.severity).unwrap_or(Severity::Warning))},
                "properties": {"tags": tags, "precision": "high",
                    "security-severity": match rule.map(|r| r.severity) { Some(Severity::Critical) => "9.0", Some(Severity::Warning) => "5.0", _ => "2.0" }},
            })
        })
        .collect();
    let results: Vec<Value> = review
        .findings
        .iter()
        .map(|f| {
            let id = rule_id(f);
            json!({
                "ruleId": id,
                "ruleIndex": rule_ids.iter().position(|r| *r == id).unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.category, f.message)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": f.line, "endLine": f.end_line}
                }}],
                "partialFingerprints": {"primaryLocationLineHash": fingerprint(f)},
                "properties": {"confidence": f.confidence, "source": f.source},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "redline",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": driver_rules,
            }},
            "automationDetails": {"id": format!("redline/{}", review.engine.as_str())},
            "results": results,
        }]
    })
}

fn rule_id(f: &crate::model::Finding) -> String {
    f.rule_id
        .clone()
        .unwrap_or_else(|| format!("llm.{}", f.category))
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "error",
        Severity::Warning => "warning",
        Severity::Suggestion => "note",
    }
}

fn fingerprint(f: &crate::model::Finding) -> String {
    use sha2::{Digest, Sha256};
    let h =
        Sha256::digest(format!("{}:{}:{}:{}", f.path, rule_id(f), f.line, f.message).as_bytes());
    format!("{}:1", &hex::encode(h)[..16])
}
