//! Taint, constants and string building on small snippets of each language.

use super::{Analysis, Trust};
use crate::lang::Language;
use tree_sitter::{Node, Parser, Tree};

fn parse(lang: Language, src: &str) -> Tree {
    let mut p = Parser::new();
    p.set_language(&lang.grammar()).unwrap();
    p.parse(src, None).unwrap()
}

/// The last node whose text is exactly `text` (identifiers and expressions alike).
fn node<'t>(a: &Analysis<'t>, text: &str) -> Node<'t> {
    let mut found = None;
    let mut stack = vec![a.root];
    while let Some(n) = stack.pop() {
        if a.text(n) == text && found.is_none_or(|f: Node<'t>| n.start_byte() >= f.start_byte()) {
            found = Some(n);
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    found.unwrap_or_else(|| panic!("no node `{text}`"))
}

fn tainted(lang: Language, src: &str, text: &str) -> bool {
    let tree = parse(lang, src);
    let a = Analysis::new(lang, src, &tree);
    a.is_tainted(node(&a, text), Trust::Remote)
}

fn constant(lang: Language, src: &str, text: &str) -> bool {
    let tree = parse(lang, src);
    let a = Analysis::new(lang, src, &tree);
    a.is_constant(node(&a, text))
}

#[test]
fn flask_django_and_aiohttp_requests_are_sources() {
    let src =
        "@app.route('/f')\ndef f():\n    name = request.args.get('n')\n    return open(name)\n";
    assert!(tainted(Language::Python, src, "name"));
    let src = "def view(request):\n    q = request.GET['q']\n    return q\n";
    assert!(tainted(Language::Python, src, "q"));
    let src = "async def h(request):\n    key = request.match_info['key']\n    return key\n";
    assert!(tainted(Language::Python, src, "key"));
}

#[test]
fn fastapi_typed_parameters_and_tornado_handlers_are_input() {
    let src = "@app.get('/items/{item_id}')\ndef read(item_id: str, db: Session = Depends(get_db)):\n    return item_id, db\n";
    assert!(tainted(Language::Python, src, "item_id"));
    assert!(!tainted(Language::Python, src, "db"));
    let src = "class FileHandler(web.RequestHandler):\n    def get(self, path):\n        return open(path)\n";
    assert!(tainted(Language::Python, src, "path"));
    let src = "class Plain(object):\n    def get(self, path):\n        return open(path)\n";
    assert!(!tainted(Language::Python, src, "path"));
}

#[test]
fn js_framework_requests_are_sources() {
    // Express, Koa, Hono, Next.js route handlers.
    let src = "app.get('/a', (req, res) => { const f = req.query.file; res.sendFile(f); });";
    assert!(tainted(Language::JavaScript, src, "f"));
    let src = "router.get('/a', async (ctx) => { const p = ctx.path; return p; });";
    assert!(tainted(Language::JavaScript, src, "p"));
    let src = "app.get('/a', async (c) => { const u = c.req.query('url'); return fetch(u); });";
    assert!(tainted(Language::TypeScript, src, "u"));
    let src = "export async function GET(req: NextRequest) { const to = req.nextUrl.searchParams.get('to'); return to; }";
    assert!(tainted(Language::TypeScript, src, "to"));
}

#[test]
fn go_framework_requests_are_sources_and_archive_entries_are_input() {
    let src = "package h\nfunc h(c *gin.Context) {\n\tname := c.Query(\"n\")\n\tuse(name)\n}\n";
    assert!(tainted(Language::Go, src, "name"));
    let src = "package h\nfunc h(w http.ResponseWriter, r *http.Request) {\n\tid := chi.URLParam(r, \"id\")\n\tuse(id)\n}\n";
    assert!(tainted(Language::Go, src, "id"));
    let src = "package u\nfunc one(zf *zip.File, dest string) string {\n\tp := filepath.Join(dest, zf.Name)\n\treturn p\n}\n";
    assert!(tainted(Language::Go, src, "p"));
    assert!(!tainted(Language::Go, src, "dest"));
}

#[test]
fn taint_flows_through_local_helpers_and_stops_at_sanitizers() {
    let src = "def _name():\n    return request.args.get('n')\n\n@app.route('/x')\ndef x():\n    a = _name()\n    b = secure_filename(a)\n    return a, b\n";
    assert!(tainted(Language::Python, src, "a"));
    assert!(!tainted(Language::Python, src, "b"));
    let src = "def unpack(zf, root):\n    for i, name in enumerate(zf.namelist()):\n        target = os.path.join(root, name)\n        print(i, target)\n";
    assert!(tainted(Language::Python, src, "target"));
}

#[test]
fn constants_include_identifier_helpers_called_with_constants() {
    let src = "package r\nfunc q() {\n\tsql := fmt.Sprintf(\"SELECT * FROM %s WHERE id = ?\", tableName(\"orders\"))\n\tuse(sql)\n}\n";
    assert!(constant(Language::Go, src, "tableName(\"orders\")"));
    let src = "package r\nfunc q(kind string) {\n\tsql := fmt.Sprintf(\"SELECT * FROM %s\", tableName(kind))\n\tuse(sql)\n}\n";
    assert!(!constant(Language::Go, src, "tableName(kind)"));
    let src = "package r\nfunc q() {\n\tsql := fmt.Sprintf(\"SELECT * FROM %s\", lookup(\"orders\"))\n\tuse(sql)\n}\n";
    assert!(!constant(Language::Go, src, "lookup(\"orders\")"));
}

#[test]
fn string_parts_follow_names_and_formatting() {
    let src = "def f(name):\n    q = \"SELECT * FROM t WHERE n = '%s'\" % name\n    run(q)\n";
    let tree = parse(Language::Python, src);
    let a = Analysis::new(Language::Python, src, &tree);
    let (lit, dynamic) = a.string_parts(node(&a, "q")).unwrap();
    assert!(lit.contains("SELECT * FROM t"));
    assert!(dynamic);
    let src = "def f():\n    q = \"SELECT 1\"\n    run(q)\n";
    let tree = parse(Language::Python, src);
    let a = Analysis::new(Language::Python, src, &tree);
    assert_eq!(a.string_parts(node(&a, "q")).map(|p| p.1), Some(false));
}

#[test]
fn string_parts_follow_the_files_own_helpers() {
    let dynamic = |src: &str| {
        let tree = parse(Language::TypeScript, src);
        let a = Analysis::new(Language::TypeScript, src, &tree);
        a.string_parts(node(&a, "command")).map(|p| p.1)
    };
    // A command line assembled by a helper from option values is dynamic where it is run.
    let built = "function createCommand(o) {\n  let c = \"git log \";\n  if (o.branch) { c += ` ${o.branch}`; }\n  return c;\n}\nfunction run(o) {\n  const command = createCommand(o);\n  execSync(command);\n}\n";
    assert_eq!(dynamic(built), Some(true));
    // One that returns only literals is not, and a recursive one does not loop.
    let fixed = "function createCommand(o) {\n  if (o) { return createCommand(null); }\n  return \"git log -1\";\n}\nfunction run(o) {\n  const command = createCommand(o);\n  execSync(command);\n}\n";
    assert_eq!(dynamic(fixed), Some(false));
    // A helper that quotes each value made the string safe for what it holds.
    let quoted = "function createCommand(o) {\n  return \"git log \" + quote(o.branch);\n}\nfunction run(o) {\n  const command = createCommand(o);\n  execSync(command);\n}\n";
    assert_eq!(dynamic(quoted), Some(false));
}

#[test]
fn go_extract_callback_names_are_input() {
    let src = "package s\nfunc unpack(r io.ReaderAt, dir string) error {\n\treturn zipx.ExtractZip(r, func(name string, f io.Reader) error {\n\t\tp := filepath.Join(dir, name)\n\t\treturn write(p, f)\n\t})\n}\n";
    assert!(tainted(Language::Go, src, "p"));
    let src = "package s\nfunc save(items []string, dir string) error {\n\treturn each(items, func(name string, f io.Reader) error {\n\t\tp := filepath.Join(dir, name)\n\t\treturn write(p, f)\n\t})\n}\n";
    assert!(!tainted(Language::Go, src, "p"));
}

#[test]
fn go_var_blocks_bind_each_name_to_its_own_value() {
    // Before, every name of a `var ( ... )` spec was bound to the spec's whole value list, so
    // `line` below was neither a string nor dynamic.
    let src = "package s\nfunc used(path string) {\n\tvar (\n\t\tline = fmt.Sprintf(\"df | grep %s\", path)\n\t\tcmd  = []string{\"bash\", \"-c\", line}\n\t)\n\trun(cmd)\n}\n";
    let tree = parse(Language::Go, src);
    let a = Analysis::new(Language::Go, src, &tree);
    assert_eq!(a.string_parts(node(&a, "line")).map(|p| p.1), Some(true));
    let src = "package s\nvar a, b = \"x\", os.Getenv(\"B\")\nfunc f() { use(a, b) }\n";
    assert!(constant(Language::Go, src, "a"));
    assert!(!constant(Language::Go, src, "b"));
}
