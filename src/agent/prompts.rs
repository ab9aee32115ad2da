//! Prompt versions: prompts/<version>/system.md, built into the binary. The version a review
//! used is recorded with it.

/// The prompt version used unless another is chosen (`REDLINE_PROMPT_VERSION`, or an A/B share).
pub const PROMPT_VERSION: &str = "review-v1";

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/prompt_files.rs"));
}

/// The prompt versions in prompts/, built in.
pub fn prompt_versions() -> Vec<&'static str> {
    embedded::PROMPTS.iter().map(|(v, _)| *v).collect()
}

/// A version's system prompt.
pub fn system_prompt(version: &str) -> Option<&'static str> {
    embedded::PROMPTS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, t)| *t)
}

/// Checks a prompt version name against prompts/.
pub fn check_prompt_version(version: &str) -> anyhow::Result<()> {
    if system_prompt(version).is_none() {
        anyhow::bail!(
            "unknown prompt version `{version}` (prompts/ has: {})",
            prompt_versions().join(", ")
        );
    }
    Ok(())
}
