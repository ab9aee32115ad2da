use super::*;
use proptest::prelude::*;

const GIT_DIFF: &str = "diff --git a/app/users.py b/app/users.py
index 3b18e51..a9c2f0d 100644
--- a/app/users.py
+++ b/app/users.py
@@ -1,4 +1,5 @@ import os
 import os
-x = 1
+x = 2
+y = 3
 
 def f():
diff --git a/new.go b/new.go
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/new.go
@@ -0,0 +1,2 @@
+package main
+func main() {}
diff --git a/old.js b/renamed.js
similarity index 90%
rename from old.js
rename to renamed.js
diff --git a/logo.png b/logo.png
index 1..2 100644
Binary files a/logo.png and b/logo.png differ
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";

#[test]
fn parses_git_diff_with_every_file_kind() {
    let files = parse(GIT_DIFF).unwrap();
    assert_eq!(files.len(), 5);
    let py = &files[0];
    assert_eq!(py.path(), "app/users.py");
    assert_eq!(py.status, FileStatus::Modified);
    assert_eq!(py.added_lines().into_iter().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(py.hunks[0].section, "import os");
    assert_eq!(py.hunks[0].new_range(), Some((1, 5)));
    assert_eq!(files[1].status, FileStatus::Added);
    assert_eq!(files[1].old_path, None);
    assert_eq!(files[1].added_lines().len(), 2);
    assert_eq!(files[2].status, FileStatus::Renamed);
    assert_eq!(files[2].old_path.as_deref(), Some("old.js"));
    assert_eq!(files[2].new_path.as_deref(), Some("renamed.js"));
    assert!(files[3].binary);
    assert!(files[4].mode_only());
}

#[test]
fn plain_diff_u_and_crlf() {
    let d = "--- a.py\t2024-01-01 00:00:00\r\n+++ a.py\t2024-01-02 00:00:00\r\n@@ -1 +1,2 @@\r\n-a\r\n+b\r\n+c\r\n";
    let files = parse(d).unwrap();
    assert_eq!(files[0].path(), "a.py");
    assert_eq!(files[0].hunks[0].lines[1].text, "b");
    assert_eq!(
        files[0].added_lines().into_iter().collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn deleted_file_has_no_new_side() {
    let d = "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n";
    let f = &parse(d).unwrap()[0];
    assert_eq!(f.status, FileStatus::Deleted);
    assert_eq!(f.path(), "gone.py");
    assert!(f.added_lines().is_empty());
    assert_eq!(f.hunks[0].new_range(), None);
}

#[test]
fn errors_name_the_line() {
    let e = parse("hello\nworld\n").unwrap_err();
    assert!(e.message.contains("not a unified diff"), "{e}");
    let e = parse("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n").unwrap_err();
    assert!(e.message.contains("ends early"), "{e}");
    let e = parse("--- a/x\n+++ b/x\n@@ -1 +1 @@\n+a\n+b\n").unwrap_err();
    assert!(e.message.contains("more lines"), "{e}");
    let e = parse("@@ -1 +1 @@\n-a\n+b\n").unwrap_err();
    assert!(e.message.contains("before any file"), "{e}");
    let e = parse("--- a/x\n+++ b/x\n@@ -x +1 @@\n").unwrap_err();
    assert!(e.message.contains("malformed hunk header"), "{e}");
    assert_eq!(parse("").unwrap(), vec![]);
}

#[test]
fn quoted_paths_are_unquoted() {
    let d = "diff --git \"a/caf\\303\\251 x.py\" \"b/caf\\303\\251 x.py\"\n--- \"a/caf\\303\\251 x.py\"\n+++ \"b/caf\\303\\251 x.py\"\n@@ -1 +1 @@\n-a\n+b\n";
    assert_eq!(parse(d).unwrap()[0].path(), "café x.py");
}

#[test]
fn diff_texts_numbers_new_side_and_finds_nearest_change() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
    let new = "a\nb\nc\nd\nX\nf\ng\nh\n";
    let f = diff_texts(Some("p"), Some("p"), old, new);
    assert_eq!(f.added_lines().into_iter().collect::<Vec<_>>(), vec![5]);
    assert_eq!(f.hunk_for_new_line(2).unwrap().new_start, 2);
    assert_eq!(f.nearest_added_line(7), Some(5));
    assert_eq!(f.nearest_added_line(1), None);
    let added = diff_texts(None, Some("n"), "", "x\r\ny\r\n");
    assert_eq!(added.status, FileStatus::Added);
    assert_eq!(added.hunks[0].lines[0].text, "x");
}

fn diff_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("diff --git a/x b/x".to_string()),
        Just("--- a/x".to_string()),
        Just("+++ b/x".to_string()),
        Just("--- /dev/null".to_string()),
        Just("new file mode 100644".to_string()),
        Just("rename from \"q\\".to_string()),
        Just("Binary files a/x and b/x differ".to_string()),
        Just("\\ No newline at end of file".to_string()),
        (0u32..5, 0u32..5, 0u32..5, 0u32..5)
            .prop_map(|(a, b, c, d)| format!("@@ -{a},{b} +{c},{d} @@ f")),
        "[ +\\-@\\\\]?[a-z\"\\\\ ]{0,6}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary text, and text shaped like a diff, never makes the parser panic; when it parses,
    /// every new-side line number lies inside its hunk's declared range.
    #[test]
    fn parse_never_panics(lines in proptest::collection::vec(diff_like_line(), 0..24)) {
        let input = lines.join("\n");
        if let Ok(files) = parse(&input) {
            for f in files {
                for h in &f.hunks {
                    for n in h.added_lines() {
                        let (a, b) = h.new_range().expect("added lines imply a new range");
                        prop_assert!(a <= n && n <= b);
                    }
                }
            }
        }
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    /// A diff made from two texts always parses back to the new text's added lines.
    #[test]
    fn diff_texts_round_trip(old in "[abc\n]{0,40}", new in "[abc\n]{0,40}") {
        let f = diff_texts(Some("p"), Some("p"), &old, &new);
        let new_lines: Vec<&str> = new.lines().collect();
        for h in &f.hunks {
            for l in &h.lines {
                if let Some(n) = l.new_line {
                    prop_assert_eq!(Some(&l.text.as_str()), new_lines.get(n as usize - 1));
                }
            }
        }
    }
}
