//! Text from a pull request (paths, code, `.redline.toml` values) or from a model (messages,
//! suggestions, categories), made safe for the place it takes in GitHub's Markdown. One function
//! per place: a code span, a table cell, prose (several lines, or one), a suggestion block, and an
//! HTML comment (our hidden markers). Whatever the input, the output cannot:
//!
//! - mention anyone: `@name` and `@org/team` get a zero-width space after the `@` outside code
//!   (GitHub does not link mentions inside code);
//! - open HTML: `<`, `>` and `&` are entities in prose, so no tag, comment opener (`<!--`) or
//!   closer (`-->`, `</details>`) survives; in code they are shown as written;
//! - link anywhere but http(s): a Markdown link to another scheme is shown as text;
//! - end a code span or block early: fences are longer than any backtick run inside;
//! - change the structure around it: line-start markers (headings, lists, quotes, tables, rules)
//!   are escaped in prose, and a cell's pipes are escaped.

/// A zero-width space: after an `@` it keeps GitHub from reading a mention.
const ZWSP: char = '\u{200B}';

/// Unicode controls that reorder text on screen ("Trojan source"): dropped from prose and shown
/// escaped in code.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The longest run of `ch` in `s`.
fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// `text` shown verbatim in a code span: control characters (a newline or tab in a file name)
/// and bidi controls appear escaped (`\n`, `\u{202e}`); the backtick fence is longer than any
/// run inside. Not for the start of a line (a fence of three backticks there opens a block).
pub fn code_span(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if shown.is_empty() {
        return "` `".to_string();
    }
    let fence = "`".repeat(longest_run(&shown, '`') + 1);
    // A space on each side keeps a leading or trailing backtick apart from the fence; the
    // parser takes one space off each side again.
    let pad = shown.starts_with(['`', ' ']) || shown.ends_with(['`', ' ']);
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{shown}{pad}{fence}")
}

/// Markdown made by this module (prose on one line, code spans), as one cell of a table row:
/// on one line, with every pipe escaped (GitHub splits cells on a bare pipe even inside a code
/// span, and takes `\|` as a pipe there too).
pub fn table_cell(fragment: &str) -> String {
    fragment
        .replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .trim()
        .to_string()
}

/// Free text, such as a model's message or a note: readable Markdown that keeps the writer's
/// code spans, fenced code blocks and http(s) links, and nothing else of Markdown or HTML.
pub fn prose(text: &str) -> String {
    let text = normalise(text);
    let mut out = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        if let Some((fence_char, len, info)) = fence_opener(line) {
            // A fenced block written by the model: kept as code, re-fenced.
            let mut body = Vec::new();
            for inner in lines.by_ref() {
                if closes_fence(inner, fence_char, len) {
                    break;
                }
                body.push(inner);
            }
            out.push(code_block(&info, &body.join("\n")));
            continue;
        }
        out.push(inline(line.trim_start(), true));
    }
    out.join("\n")
}

/// Free text on one line (a list item, a cell): as `prose`, with line breaks as spaces.
pub fn prose_line(text: &str) -> String {
    let text = normalise(text);
    let joined = text
        .split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    inline(joined.trim(), true)
}

/// A GitHub suggestion block replacing the commented lines with `code`: the fence is longer than
/// any backtick run in it, so no line of the code can close the block.
pub fn suggestion(code: &str) -> String {
    code_block("suggestion", code)
}

/// An HTML comment (hidden in the rendered page) holding `content`: only letters, digits and
/// `=:._/+-` are kept, and never two dashes in a row, so nothing can end the comment early.
pub fn html_comment(content: &str) -> String {
    let mut kept = String::new();
    for c in content.chars() {
        let ok = c.is_ascii_alphanumeric() || " =:._/+-".contains(c);
        if ok && !(c == '-' && kept.ends_with('-')) {
            kept.push(c);
        }
    }
    format!("<!-- {} -->", kept.trim().trim_end_matches('-'))
}

/// Code from a pull request shown as a fenced block (not a suggestion): verbatim, except that
/// control characters other than tabs and line ends, and bidi controls, are shown escaped.
pub fn code(info: &str, text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t' && c != '\r') || is_bidi_control(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    code_block(info, &shown)
}

/// A fenced code block with a sanitised info string.
fn code_block(info: &str, code: &str) -> String {
    let code = code.replace("\r\n", "\n").replace('\r', "\n");
    let code = code.strip_suffix('\n').unwrap_or(&code);
    let fence = "`".repeat(longest_run(code, '`').max(2) + 1);
    let info: String = info
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+-_.".contains(*c))
        .take(32)
        .collect();
    format!("{fence}{info}\n{code}\n{fence}")
}

/// Line ends as `\n`, tabs as spaces, other control and bidi characters dropped.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .collect()
}

/// A line that opens a fenced code block: its fence character, length and info string.
fn fence_opener(line: &str) -> Option<(char, usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    let info = rest[len..].trim();
    (len >= 3 && !(ch == '`' && info.contains('`'))).then(|| (ch, len, info.to_string()))
}

/// Whether `line` closes a block opened by `len` times `ch`.
fn closes_fence(line: &str, ch: char, len: usize) -> bool {
    let t = line.trim();
    line.len() - line.trim_start_matches(' ').len() <= 3
        && t.chars().all(|c| c == ch)
        && t.chars().count() >= len
}

/// One line of prose (leading space already removed): code spans and http(s) links are kept,
/// everything else is escaped. `line_start`: the text begins a line, where block markers count.
fn inline(line: &str, line_start: bool) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let at_start = line_start && i == 0;
        let c = chars[i];
        if c == '`' {
            let run = chars[i..].iter().take_while(|x| **x == '`').count();
            if let Some(end) = closing_run(&chars, i + run, run)
                && !(at_start && run >= 3)
            {
                let content: String = chars[i + run..end].iter().collect();
                out.push_str(&code_span(&strip_span_padding(&content)));
                i = end + run;
                continue;
            }
            for _ in 0..run {
                out.push_str("\\`");
            }
            i += run;
            continue;
        }
        if c == '['
            && let Some((label, url, next)) = link_at(&chars, i)
        {
            out.push('[');
            out.push_str(&inline(&label, false));
            out.push_str("](");
            out.push_str(&url);
            out.push(')');
            i = next;
            continue;
        }
        if at_start {
            if let Some(n) = ordered_marker(&chars) {
                // `1.` or `1)` would start a list: escape the delimiter.
                out.extend(&chars[..n]);
                out.push('\\');
                out.push(chars[n]);
                i = n + 1;
                continue;
            }
            if "#+-=:|".contains(c) {
                out.push('\\');
                out.push(c);
                i += 1;
                continue;
            }
        }
        escape_char(&mut out, c, chars.get(i + 1).copied());
        i += 1;
    }
    out
}

/// Where a run of exactly `run` backticks starts at or after `from`, if one does.
fn closing_run(chars: &[char], from: usize, run: usize) -> Option<usize> {
    let mut j = from;
    while j < chars.len() {
        if chars[j] == '`' {
            let n = chars[j..].iter().take_while(|x| **x == '`').count();
            if n == run {
                return Some(j);
            }
            j += n;
        } else {
            j += 1;
        }
    }
    None
}

/// A code span's content as CommonMark reads it: one space off each side when both have one.
fn strip_span_padding(content: &str) -> String {
    if content.len() >= 2
        && content.starts_with(' ')
        && content.ends_with(' ')
        && !content.trim().is_empty()
    {
        content[1..content.len() - 1].to_string()
    } else {
        content.to_string()
    }
}

/// `[label](url)` at `start` with an http(s) URL: the label, the URL, and where the link ends.
fn link_at(chars: &[char], start: usize) -> Option<(String, String, usize)> {
    let close = start + chars[start..].iter().position(|c| *c == ']')?;
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let end = close + 2 + chars[close + 2..].iter().position(|c| *c == ')')?;
    let label: String = chars[start + 1..close].iter().collect();
    let url: String = chars[close + 2..end].iter().collect();
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let clean = !url.is_empty()
        && url
            .chars()
            .all(|c| !c.is_whitespace() && !"<>\"'`()[]\\".contains(c));
    (scheme_ok && clean && !label.contains('[')).then(|| (label, url.to_string(), end + 1))
}

/// The length of the digits of `1.` / `1)` at the start of a line, if the line starts so.
fn ordered_marker(chars: &[char]) -> Option<usize> {
    let n = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    (n > 0 && n <= 9 && matches!(chars.get(n), Some('.') | Some(')'))).then_some(n)
}

/// One character of prose, escaped where Markdown or HTML would read it.
fn escape_char(out: &mut String, c: char, next: Option<char>) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        // `![alt](url)` would load an image (a tracking pixel) when the page is viewed.
        '!' if next == Some('[') => out.push_str("\\!"),
        '@' if next.is_some_and(|n| n.is_alphanumeric()) => {
            out.push('@');
            out.push(ZWSP);
        }
        '\\' | '*' | '_' | '[' | ']' | '~' | '$' | '`' => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings a pull request or a model could hand us.
    pub const HOSTILE: &[&str] = &[
        "@octocat please look",
        "cc @org/team",
        "<img src=x onerror=alert(1)>",
        "</details>",
        "<!-- open comment",
        "close -->",
        "javascript:alert(1)",
        "[x](javascript:alert(1))",
        "![img](https://example.com/t.png)",
        "```\nbreak out\n```",
        "````",
        "a|b`c`|d",
        "line one\nline two\n# heading\n- list\n> quote\n1. item\n---",
        "&#64;octocat &lt;img&gt;",
        "$\\sqrt{x}$",
        "émoji 🎉 日本語 \u{202E}txt.exe",
        "\\`@octocat\\`",
    ];

    /// GitHub's Markdown (cmark-gfm, as comrak models it), raw HTML rendered as written.
    fn render(md: &str) -> String {
        let mut o = comrak::Options::default();
        o.extension.table = true;
        o.extension.autolink = true;
        o.extension.strikethrough = true;
        o.render.r#unsafe = true;
        comrak::markdown_to_html(md, &o)
    }

    /// Text outside `<code>`/`<pre>` where GitHub would see a mention.
    fn mentions(html: &str) -> bool {
        let mut depth = 0i32;
        let mut rest = html;
        let mut text = String::new();
        while let Some(i) = rest.find('<') {
            if depth == 0 {
                text.push_str(&rest[..i]);
            }
            let tag_end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
            let tag = &rest[i..tag_end];
            if tag.starts_with("<code") || tag.starts_with("<pre") {
                depth += 1;
            } else if tag.starts_with("</code") || tag.starts_with("</pre") {
                depth -= 1;
            }
            text.push(' ');
            rest = &rest[tag_end..];
        }
        text.push_str(rest);
        let chars: Vec<char> = text.chars().collect();
        chars.windows(2).enumerate().any(|(i, w)| {
            w[0] == '@'
                && w[1].is_ascii_alphanumeric()
                && (i == 0 || !chars[i - 1].is_alphanumeric())
        })
    }

    fn assert_safe_html(html: &str, what: &str) {
        assert!(!html.contains("<img"), "{what}: {html}");
        assert!(!html.contains("</details>"), "{what}: {html}");
        assert!(!html.contains("<!--"), "{what}: {html}");
        assert!(!html.contains("-->"), "{what}: {html}");
        assert!(!html.contains("javascript:alert(1)\""), "{what}: {html}");
        assert!(
            !html.to_ascii_lowercase().contains("href=\"javascript"),
            "{what}: {html}"
        );
        assert!(!html.contains("<h1"), "{what}: {html}");
        assert!(!html.contains("<blockquote"), "{what}: {html}");
        assert!(!html.contains("<li"), "{what}: {html}");
        assert!(!html.contains("<hr"), "{what}: {html}");
        assert!(!mentions(html), "{what}: a mention survives: {html}");
    }

    #[test]
    fn hostile_prose_renders_as_inert_text() {
        for s in HOSTILE {
            let md = prose(s);
            assert_safe_html(&render(&md), &format!("prose({s:?}) = {md:?}"));
            let md = prose_line(s);
            assert!(!md.contains('\n'), "{md:?}");
            assert_safe_html(&render(&md), &format!("prose_line({s:?}) = {md:?}"));
        }
        let long = "x@octocat<".repeat(20_000);
        assert_safe_html(&render(&prose(&long)), "a long string");
    }

    #[test]
    fn prose_keeps_code_and_https_links_and_drops_other_schemes() {
        let html = render(&prose(
            "Use `execute(q, (name,))` here, see [docs](https://owasp.org/x) not [x](javascript:alert(1)).",
        ));
        assert!(html.contains("<code>execute(q, (name,))</code>"), "{html}");
        assert!(
            html.contains("<a href=\"https://owasp.org/x\">docs</a>"),
            "{html}"
        );
        assert_eq!(html.matches("<a ").count(), 1, "{html}");
        let html = render(&prose(
            "before\n```python\nx = \"<b>@octocat</b>\"\n````\nafter",
        ));
        assert!(
            html.contains("<code class=\"language-python\">x = &quot;&lt;b&gt;@octocat&lt;/b&gt;&quot;\n</code>"),
            "{html}"
        );
        assert!(html.contains("after"), "{html}");
    }

    #[test]
    fn code_spans_show_any_text_verbatim() {
        for s in HOSTILE.iter().copied().chain([
            "`",
            "``x``",
            " lead",
            "trail ",
            "app/new\nline.py",
            "tab\there",
            "q\"uote's",
        ]) {
            let md = format!("x {}", code_span(s));
            let html = render(&md);
            let shown: String = s
                .chars()
                .flat_map(|c| {
                    if c.is_control() || is_bidi_control(c) {
                        c.escape_default().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            let escaped = shown
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            assert!(
                html.contains(&format!("<code>{escaped}</code>")),
                "{s:?} -> {md:?} -> {html}"
            );
        }
    }

    #[test]
    fn table_cells_keep_their_row_together() {
        let paths = [
            "a|b.py",
            "we`ird|na`me.py",
            "x\\|y.py",
            "new\nline.py",
            "@octocat <img src=x>.py",
        ];
        let mut md = String::from("| file | status |\n|---|---|\n");
        for p in paths {
            md.push_str(&format!(
                "| {} | {} |\n",
                table_cell(&code_span(p)),
                table_cell(&prose_line(p))
            ));
        }
        let html = render(&md);
        assert_eq!(html.matches("<tr>").count(), paths.len() + 1, "{html}");
        assert_eq!(html.matches("<td>").count(), paths.len() * 2, "{html}");
        assert!(html.contains("<code>a|b.py</code>"), "{html}");
        // A backslash before a pipe may show doubled (renderers differ); the row holds either way.
        assert!(
            html.contains("<code>x\\|y.py</code>") || html.contains("<code>x\\\\|y.py</code>"),
            "{html}"
        );
        assert!(html.contains("<code>new\\nline.py</code>"), "{html}");
        assert_safe_html(&html, "table");
    }

    #[test]
    fn suggestion_fences_outlast_backtick_lines() {
        for code in ["x = 1\n```\ny = 2", "````\n`````", "plain"] {
            let md = format!("text\n\n{}\n\nafter", suggestion(code));
            let html = render(&md);
            let escaped = code.replace('&', "&amp;").replace('<', "&lt;");
            assert!(
                html.contains(&format!(
                    "<pre><code class=\"language-suggestion\">{escaped}\n</code></pre>"
                )),
                "{code:?} -> {html}"
            );
            assert!(html.contains("<p>after</p>"), "{html}");
        }
    }

    #[test]
    fn html_comments_cannot_be_ended_early() {
        assert_eq!(
            html_comment("redline:fp=0123abcd"),
            "<!-- redline:fp=0123abcd -->"
        );
        let c = html_comment("x --> <img src=x> -- y-");
        assert_eq!(c.matches("-->").count(), 1, "{c}");
        assert_eq!(c.matches('<').count(), 1, "{c}");
        assert!(!c[4..c.len() - 3].contains("--"), "{c}");
        assert_eq!(render(&format!("a\n\n{c}\n")).matches("<!--").count(), 1);
    }
}
