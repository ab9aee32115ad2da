//! The shape of a regular expression: whether it backtracks exponentially in a backtracking
//! engine (Python's `re`, JavaScript's `RegExp`; Go's RE2 does not backtrack). The pattern is
//! parsed into a small tree and these shapes are reported, each inside an unbounded repetition:
//!
//! - a repeated item that can itself repeat, with nothing mandatory beside it that it cannot
//!   match: `(a+)+`, `(\w+\s?)*`, `(".*?"|x)*` (the inner `.*?` can swallow the closing quote);
//! - alternatives that match the same single character: `(a|a)*`, `(\w|\d)+`;
//! - an alternative of fixed characters that the single-character ones can also spell, before a
//!   part that can fail: `"(\\.|[^"])*"`;
//! - two adjacent unbounded items over overlapping characters: `(?:\.(?:[a-z]-?)*[a-z]+)*`.
//!
//! Outside a repetition, two runs that can split the same characters before a part that can fail
//! are reported too (polynomial).
//!
//! A pattern that fails to parse is not reported.

/// A set of characters: ASCII as bits, everything else as one flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Set {
    ascii: u128,
    other: bool,
}

impl Set {
    fn of(c: char) -> Set {
        let mut s = Set::default();
        s.add(c);
        s
    }
    fn add(&mut self, c: char) {
        if (c as u32) < 128 {
            self.ascii |= 1u128 << (c as u32);
        } else {
            self.other = true;
        }
    }
    fn add_range(&mut self, a: char, b: char) {
        for c in (a as u32)..=(b as u32).min(127) {
            self.ascii |= 1u128 << c;
        }
        if b as u32 >= 128 {
            self.other = true;
        }
    }
    fn union(self, o: Set) -> Set {
        Set {
            ascii: self.ascii | o.ascii,
            other: self.other || o.other,
        }
    }
    fn negate(self) -> Set {
        Set {
            ascii: !self.ascii,
            other: true,
        }
    }
    fn overlaps(self, o: Set) -> bool {
        self.ascii & o.ascii != 0 || (self.other && o.other)
    }
    /// Holds nothing but whitespace (`\s`, `[ \t]`, `\t`; non-ASCII counts, as `\s` holds some).
    fn only_whitespace(self) -> bool {
        let ws = [' ', '\t', '\n', '\r', '\x0b', '\x0c']
            .iter()
            .fold(0u128, |m, c| m | 1u128 << (*c as u32));
        self.ascii != 0 && self.ascii & !ws == 0
    }
    fn is_empty(self) -> bool {
        self.ascii == 0 && !self.other
    }
}

/// A parsed pattern.
#[derive(Debug, Clone)]
enum Re {
    /// One character from a set.
    Char(Set),
    Seq(Vec<Re>),
    Alt(Vec<Re>),
    Repeat {
        item: Box<Re>,
        min: u32,
        /// None: unbounded.
        max: Option<u32>,
        /// Index (in the pattern's characters) where the repeated item starts.
        at: usize,
    },
    /// Zero-width: anchors, word boundaries, look-arounds, back-references (treated as empty).
    Empty,
    /// `$`: zero-width, but an item before it must stop at a line end.
    End,
}

impl Re {
    /// The characters the item can consume.
    fn chars(&self) -> Set {
        match self {
            Re::Char(s) => *s,
            Re::Seq(v) | Re::Alt(v) => v.iter().fold(Set::default(), |a, r| a.union(r.chars())),
            Re::Repeat { item, .. } => item.chars(),
            Re::Empty | Re::End => Set::default(),
        }
    }
    /// The characters it can start with.
    fn first(&self) -> Set {
        self.edge(false)
    }
    /// The characters it can end with.
    fn last(&self) -> Set {
        self.edge(true)
    }
    /// The characters it can start with, or with `from_end` end with: a sequence's items from that
    /// side up to the first that must consume something.
    fn edge(&self, from_end: bool) -> Set {
        match self {
            Re::Char(s) => *s,
            Re::Seq(v) => {
                let mut set = Set::default();
                let items: Box<dyn Iterator<Item = &Re>> = if from_end {
                    Box::new(v.iter().rev())
                } else {
                    Box::new(v.iter())
                };
                for r in items {
                    set = set.union(r.edge(from_end));
                    if r.mandatory() {
                        break;
                    }
                }
                set
            }
            Re::Alt(v) => v
                .iter()
                .fold(Set::default(), |a, r| a.union(r.edge(from_end))),
            Re::Repeat { item, .. } => item.edge(from_end),
            Re::Empty => Set::default(),
            // `$` stands for the line end an item before it must stop at.
            Re::End if from_end => Set::default(),
            Re::End => Set::of('\n'),
        }
    }
    /// Whether it must consume at least one character.
    fn mandatory(&self) -> bool {
        match self {
            Re::Char(_) => true,
            Re::Seq(v) => v.iter().any(Re::mandatory),
            Re::Alt(v) => v.iter().all(Re::mandatory),
            Re::Repeat { item, min, .. } => *min > 0 && item.mandatory(),
            Re::Empty | Re::End => false,
        }
    }
    /// Where a repetition starts in the pattern (0 for anything else).
    fn at(&self) -> usize {
        match self {
            Re::Repeat { at, .. } => *at,
            _ => 0,
        }
    }
    fn unbounded(&self) -> bool {
        matches!(self, Re::Repeat { max: None, item, .. } if item.mandatory())
    }
    /// The elements of a sequence (a single item is a sequence of one).
    fn elements(&self) -> Vec<&Re> {
        match self {
            Re::Seq(v) => v.iter().flat_map(Re::flat).collect(),
            other => vec![other],
        }
    }
    /// A sequence's items with nested plain sequences flattened.
    fn flat(&self) -> Vec<&Re> {
        match self {
            Re::Seq(v) => v.iter().flat_map(Re::flat).collect(),
            other => vec![other],
        }
    }
    /// The single character an alternative matches, if it matches exactly one.
    fn single_char(&self) -> Option<Set> {
        match self {
            Re::Char(s) => Some(*s),
            Re::Seq(v) => {
                let parts: Vec<&Re> = v
                    .iter()
                    .filter(|r| !matches!(r, Re::Empty | Re::End))
                    .collect();
                match parts.as_slice() {
                    [one] => one.single_char(),
                    _ => None,
                }
            }
            Re::Alt(v) => v
                .iter()
                .map(Re::single_char)
                .try_fold(Set::default(), |a, s| s.map(|s| a.union(s))),
            _ => None,
        }
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    verbose: bool,
    _src: &'a str,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, verbose: bool) -> Parser<'a> {
        Parser {
            chars: src.chars().collect(),
            pos: 0,
            verbose,
            _src: src,
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn skip_verbose(&mut self) {
        if !self.verbose {
            return;
        }
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += 1;
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn alt(&mut self, depth: usize) -> Option<Re> {
        if depth > 50 {
            return None;
        }
        let mut alts = vec![self.seq(depth)?];
        while self.eat('|') {
            alts.push(self.seq(depth)?);
        }
        Some(if alts.len() == 1 {
            alts.pop()?
        } else {
            Re::Alt(alts)
        })
    }

    fn seq(&mut self, depth: usize) -> Option<Re> {
        let mut items = Vec::new();
        loop {
            self.skip_verbose();
            match self.peek() {
                None | Some('|') | Some(')') => break,
                _ => {}
            }
            let start = self.pos;
            let atom = self.atom(depth)?;
            self.skip_verbose();
            let atom = self.quantified(atom, start)?;
            items.push(atom);
        }
        Some(Re::Seq(items))
    }

    fn quantified(&mut self, atom: Re, at: usize) -> Option<Re> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let save = self.pos;
                self.pos += 1;
                let mut a = String::new();
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    a.push(c);
                    self.pos += 1;
                }
                let (min, max) = if self.eat(',') {
                    let mut b = String::new();
                    while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                        b.push(c);
                        self.pos += 1;
                    }
                    (a.parse().unwrap_or(0), b.parse().ok())
                } else {
                    let n: Option<u32> = a.parse().ok();
                    (n.unwrap_or(0), n)
                };
                if a.is_empty() && max.is_none() || !self.eat('}') {
                    // A literal brace.
                    self.pos = save;
                    return Some(atom);
                }
                self.pos -= 1;
                (min, max)
            }
            _ => return Some(atom),
        };
        self.pos += 1;
        // Lazy and possessive markers change the order of attempts, not what can match.
        if !self.eat('?') {
            self.eat('+');
        }
        Some(Re::Repeat {
            item: Box::new(atom),
            min,
            max,
            at,
        })
    }

    fn atom(&mut self, depth: usize) -> Option<Re> {
        let c = self.peek()?;
        self.pos += 1;
        match c {
            '(' => {
                let mut lookaround = false;
                if self.eat('?') {
                    match self.peek()? {
                        ':' => self.pos += 1,
                        '=' | '!' => {
                            self.pos += 1;
                            lookaround = true;
                        }
                        '<' if matches!(self.chars.get(self.pos + 1), Some('=') | Some('!')) => {
                            self.pos += 2;
                            lookaround = true;
                        }
                        'P' | '<' | '\'' => {
                            // Named group: (?P<name>...), (?<name>...), (?'name'...); (?P=name) is a back-reference.
                            if self.peek() == Some('P') {
                                self.pos += 1;
                                if self.eat('=') {
                                    while self.peek().is_some_and(|c| c != ')') {
                                        self.pos += 1;
                                    }
                                    self.eat(')');
                                    return Some(Re::Empty);
                                }
                            }
                            while let Some(c) = self.peek() {
                                self.pos += 1;
                                if c == '>' || c == '\'' && self.pos > 1 {
                                    break;
                                }
                            }
                        }
                        '#' => {
                            while self.peek().is_some_and(|c| c != ')') {
                                self.pos += 1;
                            }
                            self.eat(')');
                            return Some(Re::Empty);
                        }
                        _ => {
                            // Inline flags: (?i) or (?i:...).
                            let mut flags = String::new();
                            while let Some(c) =
                                self.peek().filter(|c| c.is_ascii_alphabetic() || *c == '-')
                            {
                                flags.push(c);
                                self.pos += 1;
                            }
                            if flags.contains('x') {
                                self.verbose = true;
                            }
                            if self.eat(')') {
                                return Some(Re::Empty);
                            }
                            self.eat(':');
                        }
                    }
                }
                let inner = self.alt(depth + 1)?;
                if !self.eat(')') {
                    return None;
                }
                Some(if lookaround { Re::Empty } else { inner })
            }
            '[' => self.class().map(Re::Char),
            // Any character but a newline (DOTALL is rare where these shapes matter).
            '.' => Some(Re::Char(Set::of('\n').negate())),
            '^' => Some(Re::Empty),
            '$' => Some(Re::End),
            '\\' => self.escape(false),
            ')' => None,
            c => Some(Re::Char(Set::of(c))),
        }
    }

    /// After a backslash: a class, an anchor, a back-reference or a literal.
    fn escape(&mut self, in_class: bool) -> Option<Re> {
        let c = self.peek()?;
        self.pos += 1;
        let digit = {
            let mut s = Set::default();
            s.add_range('0', '9');
            s
        };
        let word = {
            let mut s = digit;
            s.add_range('a', 'z');
            s.add_range('A', 'Z');
            s.add('_');
            s.other = true;
            s
        };
        let space = {
            let mut s = Set::default();
            for c in [' ', '\t', '\n', '\r', '\x0b', '\x0c'] {
                s.add(c);
            }
            // Non-ASCII spaces are rare enough to leave out (and keep \s apart from \w).
            s
        };
        Some(match c {
            'd' => Re::Char(digit),
            'D' => Re::Char(digit.negate()),
            'w' => Re::Char(word),
            'W' => Re::Char(word.negate()),
            's' => Re::Char(space),
            'S' => Re::Char(space.negate()),
            'b' if in_class => Re::Char(Set::of('\x08')),
            'b' | 'B' | 'A' | 'Z' | 'z' | 'G' => Re::Empty,
            '1'..='9' if !in_class => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                Re::Empty
            }
            'n' => Re::Char(Set::of('\n')),
            't' => Re::Char(Set::of('\t')),
            'r' => Re::Char(Set::of('\r')),
            'f' => Re::Char(Set::of('\x0c')),
            'v' => Re::Char(Set::of('\x0b')),
            '0' => Re::Char(Set::of('\0')),
            'x' | 'u' | 'U' => {
                let n = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut hex = String::new();
                if self.eat('{') {
                    while self.peek().is_some_and(|c| c != '}') {
                        hex.push(self.peek()?);
                        self.pos += 1;
                    }
                    self.eat('}');
                } else {
                    for _ in 0..n {
                        match self.peek() {
                            Some(h) if h.is_ascii_hexdigit() => {
                                hex.push(h);
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                }
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{ffff}');
                Re::Char(Set::of(ch))
            }
            'p' | 'P' => {
                // \p{L}: a Unicode class; approximate as letters and non-ASCII.
                if self.eat('{') {
                    while self.peek().is_some_and(|c| c != '}') {
                        self.pos += 1;
                    }
                    self.eat('}');
                }
                Re::Char(word)
            }
            other => Re::Char(Set::of(other)),
        })
    }

    /// After `[`: the class up to its `]`.
    fn class(&mut self) -> Option<Set> {
        let negated = self.eat('^');
        let mut set = Set::default();
        let mut first = true;
        loop {
            let c = self.peek()?;
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let item = if c == '\\' {
                match self.escape(true)? {
                    Re::Char(s) => s,
                    _ => Set::default(),
                }
            } else {
                Set::of(c)
            };
            // A range a-z (a single character on the left, not a class such as \w).
            if self.peek() == Some('-')
                && self.chars.get(self.pos + 1).is_some_and(|c| *c != ']')
                && item.ascii.count_ones() + u32::from(item.other) == 1
            {
                self.pos += 1;
                let hi = self.peek()?;
                self.pos += 1;
                let hi = if hi == '\\' {
                    match self.escape(true)? {
                        Re::Char(s) if s.ascii.count_ones() == 1 => {
                            char::from_u32(s.ascii.trailing_zeros()).unwrap_or('\u{ffff}')
                        }
                        _ => '\u{ffff}',
                    }
                } else {
                    hi
                };
                let lo = if item.other {
                    '\u{80}'
                } else {
                    char::from_u32(item.ascii.trailing_zeros()).unwrap_or('\0')
                };
                if hi >= lo {
                    set.add_range(lo, hi);
                } else {
                    set = set.union(item);
                }
            } else {
                set = set.union(item);
            }
        }
        Some(if negated { set.negate() } else { set })
    }
}

/// The whole pattern parsed, or None when it is too long to judge or does not parse to its end.
fn parse(pattern: &str, verbose: bool) -> Option<Re> {
    if pattern.len() > 5000 {
        return None;
    }
    let mut p = Parser::new(pattern, verbose || pattern.starts_with("(?x)"));
    let re = p.alt(0)?;
    (p.pos == p.chars.len()).then_some(re)
}

/// Why a pattern backtracks exponentially, if it does, and where (a character index).
pub(super) fn backtracking_shape(pattern: &str, verbose: bool) -> Option<(&'static str, usize)> {
    find(&parse(pattern, verbose)?, false, false)
}

/// An unanchored pattern (or top-level alternative) that opens with an unbounded run of
/// whitespace followed by a part that can fail (`/ *, */`, `/\s+$/`): on a long run of spaces
/// without that part, every start position scans the whole run again, which is quadratic in the
/// input's length.
pub(super) fn leading_run_shape(pattern: &str, verbose: bool) -> bool {
    let Some(re) = parse(pattern, verbose) else {
        return false;
    };
    let alternatives: Vec<&Re> = match &re {
        Re::Alt(v) => v.iter().collect(),
        other => vec![other],
    };
    alternatives.into_iter().any(|alt| {
        let elems = alt.elements();
        // An anchor, boundary or look-around first (`^`, `\b`) pins the start: no rescans.
        let Some(
            run @ Re::Repeat {
                max: None, item, ..
            },
        ) = elems.first()
        else {
            return false;
        };
        let can_fail_after = elems[1..].iter().any(|e| can_fail(e));
        item.mandatory() && run.chars().only_whitespace() && can_fail_after
    })
}

/// `tail_can_fail`: something after the item, outside it, can fail (the `\)` after `(,\d+)?`).
fn find(re: &Re, in_repeat: bool, tail_can_fail: bool) -> Option<(&'static str, usize)> {
    match re {
        Re::Repeat { item, max, at, .. } => {
            let unbounded = max.is_none() || max.is_some_and(|m| m > 50);
            if unbounded
                && item.mandatory()
                && let Some(why) = ambiguous_body(item)
            {
                return Some((why, *at));
            }
            find(item, in_repeat || unbounded, tail_can_fail)
        }
        Re::Seq(v) => {
            if let Some(found) = spelled_twice_before_failing(re) {
                return Some(found);
            }
            if in_repeat && let Some(found) = adjacent_overlap(re) {
                return Some(found);
            }
            if !in_repeat && let Some(found) = polynomial_overlap(re, tail_can_fail) {
                return Some(found);
            }
            v.iter().enumerate().find_map(|(k, r)| {
                let tail = tail_can_fail || v[k + 1..].iter().any(can_fail);
                find(r, in_repeat, tail)
            })
        }
        Re::Alt(v) => v.iter().find_map(|r| find(r, in_repeat, tail_can_fail)),
        _ => None,
    }
}

/// The body of an unbounded repetition that can match the same text in more than one way.
fn ambiguous_body(body: &Re) -> Option<&'static str> {
    let alternatives: Vec<&Re> = match body {
        Re::Alt(v) => v.iter().collect(),
        Re::Seq(v) if v.len() == 1 => match &v[0] {
            Re::Alt(inner) => inner.iter().collect(),
            _ => vec![body],
        },
        _ => vec![body],
    };
    // (a|a)*, (\w|\d)+: two alternatives that take the same single character.
    let singles: Vec<Set> = alternatives
        .iter()
        .filter_map(|a| a.single_char())
        .collect();
    for i in 0..singles.len() {
        for j in i + 1..singles.len() {
            if singles[i].overlaps(singles[j]) {
                return Some("alternatives of a repeated group match the same character");
            }
        }
    }
    // (a+)+, (\w+\s?)*, (".*?")*: a nested unbounded item with nothing mandatory beside it
    // that it cannot also match.
    for alt in &alternatives {
        let elems = alt.elements();
        for (i, e) in elems.iter().enumerate() {
            let inner = nested_unbounded(e);
            let Some(set) = inner else { continue };
            let anchored = elems.iter().enumerate().any(|(j, m)| {
                j != i && (m.mandatory() || matches!(m, Re::End)) && !m.first().overlaps(set)
            });
            if !anchored && !set.is_empty() {
                return Some("a repeated group holds an item that repeats on its own");
            }
        }
    }
    None
}

/// `"(\\.|[^"])*"`: an unbounded repetition of alternatives, one of which is a fixed run of
/// characters that the single-character alternatives can also spell one at a time (`\\\\` is one
/// escape or two characters), followed by something that can fail. A failing match tries both
/// readings of every run: exponential. Without the failing part the first reading succeeds.
fn spelled_twice_before_failing(seq: &Re) -> Option<(&'static str, usize)> {
    let elems = seq.elements();
    for (i, e) in elems.iter().enumerate() {
        let Re::Repeat {
            item,
            max: None,
            at,
            ..
        } = e
        else {
            continue;
        };
        let alternatives: Vec<&Re> = match item.as_ref() {
            Re::Alt(v) => v.iter().collect(),
            Re::Seq(v) if v.len() == 1 => match &v[0] {
                Re::Alt(inner) => inner.iter().collect(),
                _ => continue,
            },
            _ => continue,
        };
        let singles = alternatives
            .iter()
            .filter_map(|a| a.single_char())
            .fold(Set::default(), |a, s| a.union(s));
        let spelled = alternatives.iter().any(|alt| {
            fixed_chars(alt)
                .is_some_and(|fixed| fixed.len() >= 2 && fixed.iter().all(|c| c.overlaps(singles)))
        });
        if spelled
            && elems[i + 1..]
                .iter()
                .any(|t| t.mandatory() || matches!(t, Re::End))
        {
            return Some((
                "an alternative of a repeated group spells text the other alternatives also match, before a part that can fail",
                *at,
            ));
        }
    }
    None
}

/// The characters of an alternative that matches a fixed run of single characters (`\\.`,
/// `ab`), one set per character; None when it holds anything else.
fn fixed_chars(e: &Re) -> Option<Vec<Set>> {
    let mut out = Vec::new();
    for part in e.elements() {
        match part {
            Re::Char(s) => out.push(*s),
            Re::Empty => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The characters of an unbounded repetition at the top of `e` (through groups), if any.
fn nested_unbounded(e: &Re) -> Option<Set> {
    match e {
        Re::Repeat {
            max: None, item, ..
        } if item.mandatory() => Some(item.chars()),
        Re::Seq(v) if v.len() == 1 => nested_unbounded(&v[0]),
        _ => None,
    }
}

/// Inside a repetition: two unbounded items in a row (only optional items between them) that
/// can take the same characters.
fn adjacent_overlap(seq: &Re) -> Option<(&'static str, usize)> {
    let elems = seq.elements();
    for i in 0..elems.len() {
        if !elems[i].unbounded() {
            continue;
        }
        let set = elems[i].chars();
        for e in &elems[i + 1..] {
            if e.unbounded() {
                if e.chars().overlaps(set) {
                    return Some((
                        "two repeated items in a row inside a repetition match the same characters",
                        elems[i].at(),
                    ));
                }
                break;
            }
            if e.mandatory() {
                break;
            }
        }
    }
    None
}

/// Whether an item can fail: it must consume something, or it is `$`.
fn can_fail(e: &Re) -> bool {
    e.mandatory() || matches!(e, Re::End)
}

/// Outside any repetition: two unbounded runs in a row that can take the same characters (only
/// optional items between; the first may end an optional group, the second may open one),
/// followed by something that can fail (a mandatory item or `$`, in the sequence or after it:
/// `tail_can_fail`). A failing match tries every split of the run between them, at every start:
/// quadratic or worse in the input's length (`\s*\t+\s*(\S)`,
/// `\d*n)?\s*(?:[+-]?\s*(\d+))?$`, `(,(\d+)?\.?(\d+))?\)`).
fn polynomial_overlap(seq: &Re, tail_can_fail: bool) -> Option<(&'static str, usize)> {
    let elems = seq.elements();
    for i in 0..elems.len() {
        // What the first run can end with: the second can take it when the split moves left
        // (`([a-z]+\.)+[a-z]{2,}$` splits only after a dot, which the second cannot take).
        let (set, at) = if elems[i].unbounded() {
            (elems[i].last(), elems[i].at())
        } else if let Some(run) = trailing_unbounded(elems[i]) {
            run
        } else {
            continue;
        };
        for (j, e) in elems.iter().enumerate().skip(i + 1) {
            // What the second item can start with: `[a-z]+(-[a-z]+)*` has no run to split.
            let second = if e.unbounded() {
                Some(e.first())
            } else {
                leading_unbounded(e)
            };
            // Any characters, not only whitespace: `\d+\.?\d*\)`, `.*[\/]*.*` and `\s*[^']+`
            // are advisories' shapes too. Measured on real code, such pairs are rarer than feared:
            // 8 more in the scans' 494 findings, 4 more in 1,399 ordinary commits.
            if let Some(second) = second
                && second.overlaps(set)
                && (tail_can_fail || elems[j + 1..].iter().any(|t| can_fail(t)))
            {
                return Some((
                    "two repeated items in a row match the same characters before a part that can fail (polynomial backtracking)",
                    at,
                ));
            }
            if e.mandatory() || e.unbounded() {
                break;
            }
        }
    }
    None
}

/// The characters and place of an unbounded item at the end of an optional group (`(\d+)?`,
/// `(?:,\s*)?`), before the group's own optional items.
fn trailing_unbounded(e: &Re) -> Option<(Set, usize)> {
    let Re::Repeat {
        item,
        min: 0,
        max: Some(1),
        ..
    } = e
    else {
        return None;
    };
    for inner in item.elements().into_iter().rev() {
        if inner.unbounded() {
            return Some((inner.last(), inner.at()));
        }
        if inner.mandatory() {
            return None;
        }
    }
    None
}

/// The characters of an unbounded item at the head of an optional group (`(?:\s*x)?`), past the
/// group's own optional items.
fn leading_unbounded(e: &Re) -> Option<Set> {
    let Re::Repeat { item, min: 0, .. } = e else {
        return None;
    };
    for inner in item.elements() {
        if inner.unbounded() {
            return Some(inner.first());
        }
        if inner.mandatory() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{backtracking_shape as shape, leading_run_shape};

    #[test]
    fn nested_and_overlapping_quantifiers_are_reported() {
        for p in [
            r"(a+)+$",
            r"^(\w+\s?)*$",
            r"(a|a)*b",
            r"(\d|\w)+x",
            r#"((?:\s+\w+|\s*=\s*|".*?"|'.*?')*)"#,
            r"(?:\.(?:[a-z0-9]-?)*[a-z0-9]+)*",
            r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
            r"\s*\t+\s*(\S)",
            r"^([+-]?\d*n)?\s*(?:([+-]?)\s*(\d+))?$",
            r#""(\\.|[^"])*""#,
            r"(\*{1,2})(?=[^\s*])((?:\\[\\*]|[^*])*(?:x|[^\s*]))\1",
            r"(?:ab|a|b)*c",
        ] {
            assert!(shape(p, false).is_some(), "{p}");
        }
    }

    #[test]
    fn linear_patterns_are_not_reported() {
        for p in [
            r"^\d+$",
            r"(\w+\s)*",
            r#"((?:\s+\w+|\s*=\s*|"[^"]*?"|'[^']*?'|\s*,\s*)*)"#,
            r"^[a-z]+(-[a-z]+)*$",
            r"(?:\\[\\*]|[^*])*",
            r"rgba?\((\d+),(\d+),(\d+)\)",
            r"(ab|cd)+",
            r"[\w.-]+@[\w-]+\.\w+",
            r"\s*(\w+)\s*=\s*(.*)",
            r"(?P<name>[a-z]+)(?P=name)",
            r#"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"#,
            r"(?:\n[ ]*\.\.\..*)*",
            r"(?:(?![ ]*$).+$\n?)*",
            r"\s*,\s*",
            r"^(\d+)\.(\d+)$",
            r"^(([a-z0-9-]+\.)+[a-z]{2,})$",
        ] {
            assert!(shape(p, false).is_none(), "{p}");
        }
    }

    #[test]
    fn two_runs_over_the_same_characters_before_a_failing_part_are_polynomial() {
        for p in [
            r"(\d+)\.?(\d+)\)",
            r".*[\/]*.*\/$",
            r"\((\d+\.?\d*)\)",
            r#"#\s*doctest:\s*([^\n'"]*)$"#,
            r"^(?P<group>[^ \t]+)[ \t]+(.*)$",
            r"(\d+)?\.?(\d+)px",
            r"v\((?:;(\w+)?-?(\w+))?\)",
        ] {
            assert!(shape(p, false).is_some(), "{p}");
        }
    }

    #[test]
    fn verbose_patterns_drop_comments_and_spaces() {
        let p = "( (?: a+ )+ )  # nested\n$";
        assert!(shape(p, true).is_some());
        assert!(shape("(?x) a b c # just text", false).is_none());
    }

    #[test]
    fn a_leading_whitespace_run_before_a_failing_part_is_quadratic() {
        for p in [r" *, *", r"\s+$", r"\s*;\s*", r"^\s+|\s+$", r"[ \t]+\S"] {
            assert!(leading_run_shape(p, false), "{p}");
        }
        // Anchored, nothing that can fail after the run, or no whitespace run first.
        for p in [
            r"^\s*,\s*",
            r"\s+",
            r"\s*",
            r",\s*",
            r"\bfoo\s*,",
            r"\w+\s*,",
        ] {
            assert!(!leading_run_shape(p, false), "{p}");
        }
    }
}
