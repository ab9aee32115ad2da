//! A posted body as GitHub would show it: Markdown rendered (comrak follows cmark-gfm) and the
//! checks every inert body passes, whatever else a test asks of it.

/// GitHub's Markdown, raw HTML passed through as written.
pub fn render(md: &str) -> String {
    let mut o = comrak::Options::default();
    o.extension.table = true;
    o.extension.autolink = true;
    o.extension.strikethrough = true;
    o.render.r#unsafe = true;
    comrak::markdown_to_html(md, &o)
}

/// The text GitHub would scan for mentions: outside `<code>` and `<pre>`, tags removed.
fn text_outside_code(html: &str) -> String {
    let mut depth = 0i32;
    let mut rest = html;
    let mut text = String::new();
    while let Some(i) = rest.find('<') {
        if depth == 0 {
            text.push_str(&rest[..i]);
        }
        let end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
        let tag = &rest[i..end];
        if tag.starts_with("<code") || tag.starts_with("<pre") {
            depth += 1;
        } else if tag.starts_with("</code") || tag.starts_with("</pre") {
            depth -= 1;
        }
        text.push(' ');
        rest = &rest[end..];
    }
    text.push_str(rest);
    text
}

/// Whether GitHub would link a mention in `text`.
fn has_mention(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(1)).any(|i| {
        chars[i] == '@'
            && chars[i + 1].is_ascii_alphanumeric()
            && (i == 0 || !chars[i - 1].is_alphanumeric())
    })
}

/// The checks every posted body passes, on its rendering `html`: no comment but redline's
/// markers, no link but http(s), no mention GitHub would link.
pub fn assert_no_comment_link_or_mention(html: &str, what: &str) {
    let lower = html.to_ascii_lowercase();
    let openers = html.matches("<!--").count();
    assert_eq!(
        openers,
        html.matches("<!-- redline:").count(),
        "{what}: a comment that is not ours\n{html}"
    );
    assert_eq!(openers, html.matches("-->").count(), "{what}: {html}");
    for (i, _) in lower.match_indices("href=\"") {
        let url = &lower[i + 6..];
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{what}: a link that is not http(s): {}\n{html}",
            &url[..url.len().min(60)]
        );
    }
    assert!(
        !has_mention(&text_outside_code(html)),
        "{what}: a mention GitHub would link\n{html}"
    );
}
