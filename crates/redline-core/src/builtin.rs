//! The built-in knowledge/ folder (guidance entries and their rules), compiled into the binary so
//! that a review needs no files beside the executable.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/knowledge_files.rs"));
}

/// The built-in knowledge files: (path under knowledge/, contents).
pub fn files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}
