//! Commands in comments: `/redline <command> [text]` at the start of a comment (after any quoted
//! lines), or a mention of the app (`@slug ...`) anywhere in a reply. The text is hostile input:
//! it is only ever matched here and stored as data; one comment is one command at most.

/// The longest argument kept (a reason, a question), in characters.
pub const MAX_ARGUMENT_CHARS: usize = 2000;

/// What a comment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A fresh review of the whole pull request (`/redline review`).
    Review,
    /// The finding's guidance, CWE and why this line.
    Explain,
    /// A fix, as a suggestion when one can be made safely.
    Fix,
    /// Dismiss the finding, with an optional reason.
    Ignore(String),
    /// A question in free text (answered with an LLM).
    Ask(String),
    /// The list of commands.
    Help,
}

impl Command {
    /// The name stored with the comment.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Review => "review",
            Command::Explain => "explain",
            Command::Fix => "fix",
            Command::Ignore(_) => "ignore",
            Command::Ask(_) => "ask",
            Command::Help => "help",
        }
    }

    /// The reason of `ignore` or the text of a question ("" otherwise).
    pub fn argument(&self) -> &str {
        match self {
            Command::Ignore(a) | Command::Ask(a) => a,
            _ => "",
        }
    }
}

/// The command `body` gives, if any: `/redline ...` at its start (quoted lines skipped), or, when
/// `mentions` is true (a reply in a thread), a mention of `@slug` anywhere.
pub fn parse(body: &str, slug: &str, mentions: bool) -> Option<Command> {
    let text = unquoted(body);
    if let Some(rest) = strip_prefix_word(text.trim_start(), "/redline") {
        return Some(command_of(rest));
    }
    if !mentions || slug.is_empty() {
        return None;
    }
    let (start, end) = find_mention(&text, slug)?;
    let rest = format!("{} {}", &text[..start], &text[end..]);
    Some(command_of(&rest))
}

/// `body` without its leading quoted (`>`) and blank lines: a reply that quotes the comment it
/// answers still starts with its command.
fn unquoted(body: &str) -> String {
    let mut lines = body.lines().peekable();
    while let Some(l) = lines.peek() {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('>') {
            lines.next();
        } else {
            break;
        }
    }
    lines.collect::<Vec<_>>().join("\n")
}

/// `text` after `word` when it starts with it (any case) followed by whitespace or its end.
fn strip_prefix_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// Where `@slug` is mentioned in `text`: not inside a longer name or an e-mail address.
fn find_mention(text: &str, slug: &str) -> Option<(usize, usize)> {
    let needle = format!("@{slug}");
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = !text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| name_char(c) || c == '.' || c == '/');
        let after_ok = !text[end..]
            .chars()
            .next()
            .is_some_and(|c| name_char(c) || c == '/' || c == '[');
        if before_ok && after_ok {
            return Some((start, end));
        }
        from = end;
    }
    None
}

/// The command a text (what follows `/redline`, or a reply without its mention) names.
fn command_of(rest: &str) -> Command {
    let rest = rest.trim().trim_start_matches([':', ',', '-']).trim_start();
    let (word, arg) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let word = word
        .trim_end_matches([':', ',', '.', '!', '?'])
        .to_ascii_lowercase();
    match word.as_str() {
        "" | "help" => Command::Help,
        "review" => Command::Review,
        "explain" | "why" if arg.is_empty() || word == "explain" => Command::Explain,
        "fix" => Command::Fix,
        "ignore" | "dismiss" => Command::Ignore(bounded(arg)),
        _ => Command::Ask(bounded(rest)),
    }
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_ARGUMENT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_at_the_start_or_by_mention() {
        let p = |b: &str| parse(b, "redline", true);
        assert_eq!(p("/redline explain"), Some(Command::Explain));
        assert_eq!(p("/Redline FIX please"), Some(Command::Fix));
        assert_eq!(
            p("/redline ignore validated in the caller"),
            Some(Command::Ignore("validated in the caller".into()))
        );
        assert_eq!(p("/redline ignore"), Some(Command::Ignore(String::new())));
        assert_eq!(p("/redline"), Some(Command::Help));
        assert_eq!(p("/redline help"), Some(Command::Help));
        assert_eq!(p("/redline review"), Some(Command::Review));
        assert_eq!(p("/redlinex explain"), None);
        assert_eq!(p("> quoted text\n\n/redline fix"), Some(Command::Fix));
        assert_eq!(p("@redline explain"), Some(Command::Explain));
        assert_eq!(p("@redline why"), Some(Command::Explain));
        assert_eq!(
            p("why is this a problem, @redline?"),
            Some(Command::Ask("why is this a problem,  ?".into()))
        );
        assert_eq!(
            p("@ReDline: is `name` not validated in the caller?"),
            Some(Command::Ask(
                "is `name` not validated in the caller?".into()
            ))
        );
        // Not a mention of the app: a longer name, an e-mail address, a team.
        assert_eq!(p("cc @redline-team"), None);
        assert_eq!(p("mail ops@redline.example"), None);
        assert_eq!(p("see @acme/redline"), None);
        assert_eq!(p("@redline[bot] fix"), None);
        // Plain talk in a thread is not a command; mentions count only in replies.
        assert_eq!(p("I think this is fine"), None);
        assert_eq!(parse("@redline explain", "redline", false), None);
        // One command per comment: a second one is the first one's text.
        assert_eq!(
            p("/redline ignore x\n/redline fix"),
            Some(Command::Ignore("x\n/redline fix".into()))
        );
        let long = format!("/redline ignore {}", "é".repeat(5000));
        assert_eq!(
            p(&long).unwrap().argument().chars().count(),
            MAX_ARGUMENT_CHARS
        );
    }
}
