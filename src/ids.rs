//! GitHub's identifiers as types, so that an installation id cannot be passed as a pull request
//! number and a repository name is always `owner/name`. The store keeps them as BIGINT and TEXT;
//! the conversions are here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A GitHub App installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstallationId(pub u64);

/// A pull request's number within its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrNumber(pub u64);

/// A repository as `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

/// A commit's SHA (hex). Empty means "the pull request's head as it is now" in a job asked for by
/// a comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(String);

macro_rules! bigint_id {
    ($t:ident) => {
        impl $t {
            /// The value as the store keeps it (BIGINT).
            pub fn to_db(self) -> i64 {
                self.0 as i64
            }
        }

        impl TryFrom<i64> for $t {
            type Error = String;
            fn try_from(v: i64) -> Result<Self, String> {
                u64::try_from(v)
                    .map($t)
                    .map_err(|_| format!("{} must not be negative (got {v})", stringify!($t)))
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bigint_id!(InstallationId);
bigint_id!(PrNumber);

impl RepoName {
    /// `owner/name` with exactly one slash and neither part empty.
    pub fn parse(s: &str) -> Result<RepoName, String> {
        match s.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(RepoName(s.to_string()))
            }
            _ => Err(format!("`{s}` is not a repository name (owner/name)")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn owner(&self) -> &str {
        self.0.split_once('/').map(|(o, _)| o).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.0.split_once('/').map(|(_, n)| n).unwrap_or("")
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RepoName::parse(&s)
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl CommitSha {
    pub fn new(s: impl Into<String>) -> CommitSha {
        CommitSha(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first ten characters, for messages.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(10)]
    }
}

impl From<String> for CommitSha {
    fn from(s: String) -> Self {
        CommitSha(s)
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl PartialEq<str> for CommitSha {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_have_an_owner_and_a_name() {
        assert_eq!(RepoName::parse("acme/shop").unwrap().owner(), "acme");
        assert_eq!(RepoName::parse("acme/shop").unwrap().name(), "shop");
        for bad in ["acme", "/shop", "acme/", "a/b/c", ""] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(InstallationId::try_from(-1).is_err());
        assert_eq!(PrNumber::try_from(7).unwrap().to_db(), 7);
    }
}
