//! The rules engine on real-code shapes, through the binary: inline suppression comments (ours,
//! and the narrow reading of `#nosec` / `nosemgrep`), and removed-check findings placed next to
//! the deletion.

use crate::common::*;

/// Reviews `base` -> `head` folders written in a temporary directory; returns the JSON output.
fn review_dirs(base: &[(&str, &[u8])], head: &[(&str, &[u8])]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    write_files(&dir.path().join("a"), base);
    write_files(&dir.path().join("b"), head);
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    let r = review_folders(dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

/// The review's one finding is `rule` at `path:line`.
fn assert_only_finding(v: &serde_json::Value, path: &str, line: u64, rule: &str) {
    let got = findings(v);
    assert_eq!(
        got,
        vec![(path.to_string(), line, rule.to_string())],
        "{got:?}"
    );
}

fn notes(v: &serde_json::Value) -> Vec<String> {
    v["summary"]["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const PY_EVAL: &[u8] = b"def run(expr):\n    return eval(expr)\n";

#[test]
fn a_finding_is_reported_without_a_suppression_comment() {
    let v = review_dirs(&[], &[("calc.py", PY_EVAL)]);
    assert_eq!(
        findings(&v),
        vec![("calc.py".to_string(), 2, "py.code.eval".to_string())]
    );
}

#[test]
fn redline_ignore_on_the_line_suppresses_that_rule_and_says_so_in_the_notes() {
    let head = b"def run(expr):\n    return eval(expr)  # redline: ignore py.code.eval expr comes from our own config file\n";
    let v = review_dirs(&[], &[("calc.py", head)]);
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
    let n = notes(&v);
    assert!(
        n.iter().any(
            |n| n.contains("suppressed by a comment: py.code.eval at calc.py:2")
                && n.contains("expr comes from our own config file")
        ),
        "{n:?}"
    );
}

#[test]
fn redline_ignore_on_the_line_above_works_in_go_and_names_a_category_too() {
    let head = b"package jobs\n\nfunc Archive(name string) error {\n\t// redline: ignore command-injection name is validated by the caller against a fixed list\n\treturn exec.Command(\"sh\", \"-c\", \"tar czf /tmp/\"+name+\".tgz /data\").Run()\n}\n";
    let v = review_dirs(&[], &[("jobs/archive.go", head)]);
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
    assert!(notes(&v).iter().any(|n| n.contains("go.cmd.shell-c")));
}

#[test]
fn redline_ignore_for_another_rule_does_not_suppress() {
    let head = b"def run(expr):\n    return eval(expr)  # redline: ignore py.sql.dynamic-query wrong rule\n";
    let v = review_dirs(&[], &[("calc.py", head)]);
    assert_eq!(findings(&v).len(), 1);
    assert!(notes(&v).iter().all(|n| !n.contains("suppressed")));
}

#[test]
fn nosec_suppresses_only_the_class_it_names() {
    // A gosec code for SQL on a Sprintf line: the SQL finding goes, with a note.
    let sql = b"package repo\n\nfunc (r *Repo) Find(name string) error {\n\tq := fmt.Sprintf(\"SELECT id FROM users WHERE name = '%s'\", name)\n\t_, err := r.db.Query(q) // #nosec G201 -- name is an enum value\n\treturn err\n}\n";
    let v = review_dirs(&[], &[("repo/find.go", sql)]);
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
    assert!(notes(&v).iter().any(|n| n.contains("go.sql.dynamic-query")));
    // A gosec code for another class leaves the finding in place.
    let other = b"package repo\n\nfunc (r *Repo) Find(name string) error {\n\tq := fmt.Sprintf(\"SELECT id FROM users WHERE name = '%s'\", name)\n\t_, err := r.db.Query(q) // #nosec G204\n\treturn err\n}\n";
    let v = review_dirs(&[], &[("repo/find.go", other)]);
    assert_eq!(findings(&v).len(), 1, "{:?}", findings(&v));
}

#[test]
fn nosemgrep_with_a_rule_id_suppresses_its_class_only() {
    let head = b"def run(expr):\n    return eval(expr)  # nosemgrep: python.lang.security.audit.eval-detected\n";
    let v = review_dirs(&[], &[("calc.py", head)]);
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
    let head = b"def run(expr):\n    return eval(expr)  # nosemgrep: python.lang.security.audit.formatted-sql-query\n";
    let v = review_dirs(&[], &[("calc.py", head)]);
    assert_eq!(findings(&v).len(), 1);
}

#[test]
fn a_deleted_containment_check_is_reported_next_to_the_deletion() {
    let base = b"package unpack\n\nfunc writeEntry(hdr *tar.Header, dest string) error {\n\ttarget := filepath.Join(dest, hdr.Name)\n\tif !strings.HasPrefix(target, filepath.Clean(dest)+string(os.PathSeparator)) {\n\t\treturn fmt.Errorf(\"illegal path %q\", hdr.Name)\n\t}\n\tf, err := os.Create(target)\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn f.Close()\n}\n";
    let head = b"package unpack\n\nfunc writeEntry(hdr *tar.Header, dest string) error {\n\ttarget := filepath.Join(dest, hdr.Name)\n\tf, err := os.Create(target)\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn f.Close()\n}\n";
    // The file only loses lines: it is still reviewed.
    let v = review_dirs(&[("unpack/tar.go", base)], &[("unpack/tar.go", head)]);
    assert_only_finding(&v, "unpack/tar.go", 5, "removed.path-containment");
    let msg = v["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("strings.HasPrefix"), "{msg}");
    assert!(msg.contains("os.Create(target)"), "{msg}");
}

#[test]
fn a_containment_check_that_moved_into_a_helper_is_not_a_removal() {
    let base = b"package unpack\n\nfunc writeEntry(hdr *tar.Header, dest string) error {\n\ttarget := filepath.Join(dest, hdr.Name)\n\tif !strings.HasPrefix(target, filepath.Clean(dest)+string(os.PathSeparator)) {\n\t\treturn fmt.Errorf(\"illegal path %q\", hdr.Name)\n\t}\n\tf, err := os.Create(target)\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn f.Close()\n}\n";
    let head = b"package unpack\n\nfunc inside(target, dest string) bool {\n\treturn strings.HasPrefix(target, filepath.Clean(dest)+string(os.PathSeparator))\n}\n\nfunc writeEntry(hdr *tar.Header, dest string) error {\n\ttarget := filepath.Join(dest, hdr.Name)\n\tif !inside(target, dest) {\n\t\treturn fmt.Errorf(\"illegal path %q\", hdr.Name)\n\t}\n\tf, err := os.Create(target)\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn f.Close()\n}\n";
    let v = review_dirs(&[("unpack/tar.go", base)], &[("unpack/tar.go", head)]);
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
}

#[test]
fn a_graver_finding_on_a_removed_checks_line_speaks_for_it() {
    // The change drops the safe loader for yaml.load: the generic "a validating call was removed"
    // warning and the critical unsafe-deserialization finding land on one line; the critical one
    // is what the reviewer needs to read.
    let base = b"import yaml\n\n\ndef read_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f)\n";
    let head = b"import yaml\n\n\ndef read_config(path):\n    with open(path) as f:\n        return yaml.load(f, Loader=yaml.Loader)\n";
    let v = review_dirs(&[("cfg/load.py", base)], &[("cfg/load.py", head)]);
    let got = findings(&v);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, 6, "{got:?}");
    assert_eq!(v["findings"][0]["severity"], "critical", "{v}");
    assert_eq!(
        v["findings"][0]["category"], "unsafe-deserialization",
        "{v}"
    );
}

#[test]
fn a_deleted_guard_clause_is_a_warning_but_error_propagation_is_not() {
    let base = b"function setLimit(req, res) {\n  const n = Number(req.query.n);\n  if (!Number.isInteger(n) || n < 1) {\n    return res.status(400).send(\"n must be a positive integer\");\n  }\n  store.limit = n;\n}\n";
    let head =
        b"function setLimit(req, res) {\n  const n = Number(req.query.n);\n  store.limit = n;\n}\n";
    let v = review_dirs(&[("api/limit.js", base)], &[("api/limit.js", head)]);
    assert_eq!(
        findings(&v),
        vec![(
            "api/limit.js".to_string(),
            3,
            "removed.guard-clause".to_string()
        )]
    );
    assert_eq!(v["findings"][0]["severity"], "warning", "{v}");
    let go_base = b"package cfg\n\nfunc load(path string) (*Config, error) {\n\tdata, err := os.ReadFile(path)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn parse(data)\n}\n";
    let go_head = b"package cfg\n\nfunc load(path string) (*Config, error) {\n\tdata, _ := os.ReadFile(path)\n\treturn parse(data)\n}\n";
    let v = review_dirs(&[("cfg/load.go", go_base)], &[("cfg/load.go", go_head)]);
    assert!(
        !findings(&v).iter().any(|f| f.2.starts_with("removed.")),
        "{:?}",
        findings(&v)
    );
}

#[test]
fn a_broad_removed_check_reports_twice_per_file_and_names_the_other_lines() {
    // Four handlers each lose the same validation call: the generic warning comments on the
    // first two and the second names the other two lines, rather than four like comments.
    let handler = |name: &str, with_check: bool| {
        format!(
            "function {name}(req, res) {{\n{}  return db.find(req.params.id).then((r) => res.json(r));\n}}\n\n",
            if with_check {
                "  validateId(req.params.id);\n"
            } else {
                ""
            }
        )
    };
    let file = |with_check: bool| {
        ["getUser", "getOrder", "getInvoice", "getTicket"]
            .iter()
            .map(|n| handler(n, with_check))
            .collect::<String>()
    };
    let (base, head) = (file(true), file(false));
    let v = review_dirs(
        &[("api/handlers.js", base.as_bytes())],
        &[("api/handlers.js", head.as_bytes())],
    );
    let got: Vec<_> = findings(&v)
        .into_iter()
        .filter(|f| f.2 == "removed.sanitizer-call")
        .collect();
    assert_eq!(got.len(), 2, "{v}");
    let last = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|f| f["rule_id"] == "removed.sanitizer-call")
        .unwrap();
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("the change does the same on lines 10, 14 of this file"),
        "{message}"
    );
}

#[test]
fn a_deleted_list_of_forbidden_keys_is_reported_where_it_was_used() {
    let base = b"const BLOCKED_KEYS = ['__proto__', 'constructor'];\n\nmodule.exports = function nest(data) {\n  const out = {};\n  for (const name of Object.keys(data)) {\n    const keys = name.split('.');\n    let target = out;\n    for (const k of keys.slice(0, -1)) {\n      if (BLOCKED_KEYS.includes(k)) {\n        break;\n      }\n      target = target[k] = target[k] || {};\n    }\n    target[keys[keys.length - 1]] = data[name];\n  }\n  return out;\n};\n";
    let head = b"module.exports = function nest(data) {\n  const out = {};\n  for (const name of Object.keys(data)) {\n    const keys = name.split('.');\n    let target = out;\n    for (const k of keys.slice(0, -1)) {\n      target = target[k] = target[k] || {};\n    }\n    target[keys[keys.length - 1]] = data[name];\n  }\n  return out;\n};\n";
    let v = review_dirs(&[("lib/nest.js", base)], &[("lib/nest.js", head)]);
    // On the loop body where the check was (head line 7), not on line 1 where the list was.
    assert_eq!(
        findings(&v),
        vec![(
            "lib/nest.js".to_string(),
            7,
            "removed.prototype-key-guard".to_string()
        )],
        "{v}"
    );
}

#[test]
fn a_deleted_guard_that_repeats_the_guard_above_is_reported_where_git_shows_it_gone() {
    // The deleted lines could sit four lines higher (their `c.JSON/return/}/blank` tail repeats
    // the guard above); a plain Myers diff puts them there. Git, and so every pull request,
    // shows the regex check gone just above `os.Open`: the finding belongs there (head line 10).
    let guard = "\tif !strings.Contains(filePath, \"/var/lib/app\") {\n\t\tc.JSON(http.StatusNotFound, \"denied\")\n\t\treturn\n\t}\n\n";
    let check = "\tmatched, err := regexp.MatchString(`^/var/lib/app/\\d`, filePath)\n\tif err != nil {\n\t\tc.JSON(http.StatusNotFound, \"denied\")\n\t\treturn\n\t}\n\tif !matched {\n\t\tc.JSON(http.StatusNotFound, \"denied\")\n\t\treturn\n\t}\n\n";
    let open = "\tfileTmp, _ := os.Open(filePath)\n\tdefer fileTmp.Close()\n\tio.Copy(c.Writer, fileTmp)\n}\n";
    let func = "func GetUserImage(c *gin.Context) {\n\tfilePath := c.Query(\"path\")\n";
    // The change also drops the `regexp` import, as the real fix's reversal did.
    let base = format!("package route\n\nimport \"regexp\"\n{func}{guard}{check}{open}");
    let head = format!("package route\n\n{func}{guard}{open}");
    let v = review_dirs(
        &[("route/user.go", base.as_bytes())],
        &[("route/user.go", head.as_bytes())],
    );
    assert_only_finding(&v, "route/user.go", 10, "removed.path-containment");
}

#[test]
fn html_written_with_fmt_is_reported_on_the_line_of_the_request_value() {
    // The page is a raw string over several lines; the escape belongs where the values are.
    let page = "package web\n\nfunc fallback(w http.ResponseWriter, r *http.Request) {\n\tfmt.Fprintf(w, `<html>\n<body>\n<h1>%s</h1>\n<p>%s</p>\n</body>\n</html>\n`, r.URL.Query().Get(\"error\"), r.URL.Query().Get(\"hint\"))\n}\n";
    let v = review_dirs(&[], &[("web/fallback.go", page.as_bytes())]);
    assert_only_finding(&v, "web/fallback.go", 10, "go.xss.fprintf-html");
}

#[test]
fn a_removed_escape_kept_in_a_variable_is_reported_where_its_use_now_takes_the_raw_value() {
    let base = "function page(hostname: string): string {\n  const safeHostname = escapeHtml(hostname);\n\n  return `<!doctype html>\n<html>\n  <body>\n    <h1>Blocked: \"${safeHostname}\"</h1>\n  </body>\n</html>`;\n}\n";
    let head = "function page(hostname: string): string {\n  return `<!doctype html>\n<html>\n  <body>\n    <h1>Blocked: \"${hostname}\"</h1>\n  </body>\n</html>`;\n}\n";
    let v = review_dirs(
        &[("src/page.ts", base.as_bytes())],
        &[("src/page.ts", head.as_bytes())],
    );
    assert_only_finding(&v, "src/page.ts", 5, "removed.html-escape");
}

#[test]
fn a_removed_middleware_is_reported_on_the_route_that_no_longer_takes_it() {
    // The guard's variable goes, and the route it was mounted on is the same call without it:
    // the fix puts it back there, not at the deletion.
    let base = "export class DownloadEndpoint {\n    configure(app: Application): void {\n        // Only signed-in connections may read files.\n        const guard: RequestHandler = (request, response, next) => this.validator.validateRequest(request, response, next);\n        const router = Router();\n        router.get('/', (request, response) => this.handler.handle(request, response));\n        app.use(json());\n        app.use('/files', guard, router);\n    }\n}\n";
    let head = "export class DownloadEndpoint {\n    configure(app: Application): void {\n        const router = Router();\n        router.get('/', (request, response) => this.handler.handle(request, response));\n        app.use(json());\n        app.use('/files', router);\n    }\n}\n";
    let v = review_dirs(
        &[("src/endpoint.ts", base.as_bytes())],
        &[("src/endpoint.ts", head.as_bytes())],
    );
    assert_only_finding(&v, "src/endpoint.ts", 6, "removed.authorization-check");
}

#[test]
fn a_guard_that_only_moved_within_its_line_is_not_where_the_removal_is_reported() {
    // Two edits in one function: the first moves `--` before the host, the second drops it.
    let base = "package proxy\n\nfunc run(host, doCmd, translated string, tty bool) error {\n\targs := []string{}\n\tif translated != \"\" {\n\t\targs = append(args, host, \"--\", translated)\n\t} else {\n\t\tif tty {\n\t\t\targs = append(args, \"-t\")\n\t\t}\n\t\targs = append(args, host, \"--\", doCmd)\n\t}\n\treturn exec.Command(\"ssh\", args...).Run()\n}\n";
    let head = "package proxy\n\nfunc run(host, doCmd, translated string, tty bool) error {\n\targs := []string{}\n\tif translated != \"\" {\n\t\targs = append(args, \"--\", host, translated)\n\t} else {\n\t\tif tty {\n\t\t\targs = append(args, \"-t\")\n\t\t}\n\t\targs = append(args, host, doCmd)\n\t}\n\treturn exec.Command(\"ssh\", args...).Run()\n}\n";
    let v = review_dirs(
        &[("proxy/run.go", base.as_bytes())],
        &[("proxy/run.go", head.as_bytes())],
    );
    assert_only_finding(&v, "proxy/run.go", 11, "removed.shell-argument-guard");
}

#[test]
fn a_deleted_escaped_variable_whose_use_takes_another_value_stays_next_to_the_deletion() {
    // `${safe}` became `${label}`, not the raw `name`: nothing says the escape belongs there.
    let base = "function render(name: string, el: Element) {\n  const safe = escapeHtml(name);\n  const label = lookup(name);\n  el.innerHTML = `<b>${safe}</b>`;\n  log(label);\n}\n";
    let head = "function render(name: string, el: Element) {\n  const label = lookup(name);\n  el.innerHTML = `<b>${label}</b>`;\n  log(label);\n}\n";
    let v = review_dirs(
        &[("src/render.ts", base.as_bytes())],
        &[("src/render.ts", head.as_bytes())],
    );
    assert_only_finding(&v, "src/render.ts", 2, "removed.html-escape");
}
