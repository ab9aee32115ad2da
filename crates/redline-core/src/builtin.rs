//! The built-in knowledge/ folder (guidance entries and their rules), compiled into the binary so
//! that a review needs no files beside the executable.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/knowledge_files.rs"));
}

/// The built-in knowledge files: (path under knowledge/, contents).
pub fn files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}

/// The built-in rules files as a review reads them: (path, JSON without the rules' examples).
pub fn rules_for_review() -> &'static [(&'static str, &'static str)] {
    embedded::RULES_FOR_REVIEW
}

/// A hash of the built-in rules files, computed when the crate is built (see build.rs).
pub fn rules_hash() -> &'static str {
    embedded::RULES_HASH
}
