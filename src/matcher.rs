//! Decides which processes are which service, for all services at once.
//!
//! Services are matched in one sweep over the process table: every `process`
//! pattern is compiled into a single `RegexSet`, so each command line is read
//! once whatever the number of services, and exact executable paths are looked
//! up in a hash map. Cost grows with processes + services, not their product.
//!
//! A pattern must match whole words: `/usr/sbin/sshd` matches
//! `sshd: /usr/sbin/sshd [listener]` but not `vi /usr/sbin/sshd_config`, and
//! `cp` does not match `scp`. Word characters are those a file name is made
//! of: letters, digits, `_`, `-` and `.`; anything else (spaces, `/`, `:`,
//! brackets) is a boundary.
//!
//! Most patterns are paths, and real paths have dots (`php-fpm8.2`,
//! `python3.11`, `app.jar`), which make them regular expressions. Those made
//! only of literal text, `.`, `^` and `$` (a [`Shape`]) are found by their
//! longest literal piece in Aho-Corasick automata (one per [`CHUNK`]
//! patterns: building one takes time that grows faster than its patterns,
//! so a huge policy gets several small ones), and each occurrence is
//! checked byte by byte, boundaries included; only other regular
//! expressions go into the `RegexSet`, whose lazy DFA gets costly to build
//! and to run as patterns are added. Both give the same answers.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use anyhow::{Context, Result};
use regex::{Regex, RegexSet, RegexSetBuilder};
use regex_syntax::hir::{Dot, Hir, HirKind, Look};

use crate::scan::Process;

const WORD: &str = r"A-Za-z0-9_.\-";

/// Literal patterns per automaton. aho-corasick's builder moves its match
/// states together in time that grows with the square of their number (1.5 s
/// for 100,000 paths); chunks keep it linear, and a command line is scanned
/// once per chunk, which costs nothing below thousands of services.
const CHUNK: usize = 4096;

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// The regular expression actually run for a `process` pattern.
pub(crate) fn whole_words(pattern: &str) -> String {
    format!("(?:^|[^{WORD}])(?:{pattern})(?:$|[^{WORD}])")
}

/// The text a pattern matches, if it matches exactly one text.
#[cfg(test)]
fn literal(pattern: &str) -> Option<String> {
    match shape(pattern)? {
        Shape {
            pieces,
            start: false,
            end: false,
            ..
        } => match pieces.as_slice() {
            [Piece::Lit(text)] => String::from_utf8(text.clone()).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// One piece of a [`Shape`]: bytes as written, or `.` (one character
/// that is not a line feed).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Vec<u8>),
    Any,
}

/// A pattern made only of literal text and `.`, maybe anchored (`^`, `$`):
/// what paths as admins write them come to (`/usr/sbin/php-fpm8.2`,
/// `^/usr/bin/python3.11 /srv/app.py`). It is found by one literal piece
/// (`key`: the one fewest other patterns share, the longest of those) in
/// the Aho-Corasick automata, and checked there, byte by byte, without a
/// regular expression.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    pieces: Vec<Piece>,
    /// `^`: only at the start of the command line; `$`: only at its end.
    start: bool,
    end: bool,
    /// The piece looked for (a literal of at least two bytes); the
    /// longest until [`rarest_keys`] picks among them.
    key: usize,
}

impl Shape {
    /// Its literal pieces long enough to be looked for, by index.
    fn candidates(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.pieces.iter().enumerate().filter_map(|(i, p)| match p {
            Piece::Lit(lit) if lit.len() >= 2 => Some((i, lit.as_slice())),
            _ => None,
        })
    }

    fn key_bytes(&self) -> &[u8] {
        match &self.pieces[self.key] {
            Piece::Lit(key) => key,
            Piece::Any => unreachable!("a key is a literal piece"),
        }
    }

    /// Bytes before the key piece (each `.` one byte).
    fn before_key(&self) -> usize {
        self.pieces[..self.key].iter().map(Piece::len).sum()
    }

    /// Whether the pattern matches `text` with its key piece at `at`:
    /// Some(answer), or None when a `.` falls on a byte that is not ASCII
    /// (a character of several bytes: the regular expression decides).
    fn holds_at(&self, text: &[u8], at: usize, anywhere: bool) -> Option<bool> {
        let Some(start) = at.checked_sub(self.before_key()) else {
            return Some(false);
        };
        let mut pos = start;
        for piece in &self.pieces {
            match piece {
                Piece::Lit(lit) => {
                    if text.get(pos..pos + lit.len()) != Some(lit.as_slice()) {
                        return Some(false);
                    }
                    pos += lit.len();
                }
                Piece::Any => match text.get(pos) {
                    None | Some(b'\n') => return Some(false),
                    Some(b) if !b.is_ascii() => return None,
                    Some(_) => pos += 1,
                },
            }
        }
        if (self.start && start != 0) || (self.end && pos != text.len()) {
            return Some(false);
        }
        let before = start.checked_sub(1).map(|i| text[i]);
        let after = text.get(pos).copied();
        Some(anywhere || (!before.is_some_and(is_word_byte) && !after.is_some_and(is_word_byte)))
    }
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Lit(lit) => lit.len(),
            Piece::Any => 1,
        }
    }
}

/// Whether a pattern is plain text: no character a regular expression
/// gives a meaning (most are paths; they need no parsing at all).
pub(crate) fn plain(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.chars().any(regex_syntax::is_meta_character)
}

/// The shape of a pattern of literal text, `.`, `^` and `$` only, with a
/// literal piece of at least two bytes to find it by; None for any other
/// regular expression (classes, alternations, repetitions, flags).
fn shape(pattern: &str) -> Option<Shape> {
    // Most patterns are paths with nothing special in them: no parsing (a
    // long one costs time the parser would spend joining its characters).
    if plain(pattern) {
        return Some(Shape {
            pieces: vec![Piece::Lit(pattern.as_bytes().to_vec())],
            start: false,
            end: false,
            key: 0,
        });
    }
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let items = match hir.kind() {
        HirKind::Concat(items) => items.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    let dot = Hir::dot(Dot::AnyCharExceptLF);
    let mut shape = Shape {
        pieces: Vec::new(),
        start: false,
        end: false,
        key: 0,
    };
    let last = items.len().checked_sub(1)?;
    for (i, item) in items.iter().enumerate() {
        match item.kind() {
            HirKind::Literal(lit) => match shape.pieces.last_mut() {
                Some(Piece::Lit(prev)) => prev.extend_from_slice(&lit.0),
                _ => shape.pieces.push(Piece::Lit(lit.0.to_vec())),
            },
            _ if item == &dot => shape.pieces.push(Piece::Any),
            HirKind::Look(Look::Start) if i == 0 => shape.start = true,
            HirKind::Look(Look::End) if i == last => shape.end = true,
            _ => return None,
        }
    }
    let (key, _) =
        (shape.candidates()).max_by_key(|&(i, lit)| (lit.len(), std::cmp::Reverse(i)))?;
    Some(Shape { key, ..shape })
}

/// Gives each shape the key fewest other shapes have among their pieces
/// (the longest of those): paths that share a directory
/// (`/opt/app/worker.1`, `/opt/app/worker.2`) are then found by what tells
/// them apart, not each by the directory every one of their processes has.
fn rarest_keys(shapes: &mut [&mut Shape]) {
    let mut count: HashMap<&[u8], usize> = HashMap::new();
    for shape in shapes.iter() {
        let mut seen: Vec<&[u8]> = shape.candidates().map(|(_, lit)| lit).collect();
        seen.sort_unstable();
        seen.dedup();
        for lit in seen {
            *count.entry(lit).or_default() += 1;
        }
    }
    let keys: Vec<Option<usize>> = (shapes.iter())
        .map(|shape| {
            (shape.candidates())
                .min_by_key(|&(i, lit)| (count[lit], std::cmp::Reverse(lit.len()), i))
                .map(|(i, _)| i)
        })
        .collect();
    for (shape, key) in shapes.iter_mut().zip(keys) {
        if let Some(key) = key {
            shape.key = key;
        }
    }
}

/// How one service recognises its processes: its `process` pattern, its
/// `exe` path, or both (then both must hold).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spec<'a> {
    pub(crate) process: Option<&'a str>,
    /// The pattern may match inside a word.
    pub(crate) anywhere: bool,
    pub(crate) exe: Option<&'a str>,
}

/// Everything needed to tell, for one process, which services it is.
pub(crate) struct Matcher {
    services: usize,
    /// Per service: whether it has a pattern, and whether it has an `exe`.
    needs: Vec<(bool, bool)>,
    /// Per service: whether its pattern may match inside a word.
    anywhere: Vec<bool>,
    /// Services by their `exe` path.
    exact_exe: HashMap<String, Vec<usize>>,
    /// Automata of at most [`CHUNK`] distinct key pieces each, and the
    /// shaped patterns with each key, by the automaton's pattern index (a
    /// key given once however many share it: an automaton lists a state's
    /// matches one by one, in time quadratic in their number).
    literals: Vec<(AhoCorasick, Vec<Vec<usize>>)>,
    /// Each shaped pattern (paths, with `.`, `^`, `$`), its service, and
    /// the pattern as written ...
    shaped: Vec<(Shape, usize, String)>,
    /// ... whose regular expression is compiled only if a `.` falls on a
    /// character of several bytes.
    fallback: Vec<std::sync::OnceLock<Option<Regex>>>,
    set: RegexSet,
    /// Service of each regular expression, by the set's pattern index.
    regex_service: Vec<usize>,
}

impl Matcher {
    /// `specs[i]` says how service i recognises its processes.
    pub(crate) fn new<'a>(specs: impl IntoIterator<Item = Spec<'a>>) -> Result<Matcher> {
        Self::build(specs.into_iter().collect(), true)
    }

    fn build(specs: Vec<Spec>, use_literals: bool) -> Result<Matcher> {
        let mut shaped: Vec<(Shape, usize, String)> = Vec::new();
        let mut regexes = Vec::new();
        let mut regex_service = Vec::new();
        let mut exact_exe: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            if let Some(exe) = spec.exe {
                exact_exe.entry(exe.to_string()).or_default().push(i);
            }
            let Some(p) = spec.process else {
                continue;
            };
            match shape(p).filter(|_| use_literals) {
                Some(shape) => shaped.push((shape, i, p.to_string())),
                None if spec.anywhere => {
                    regexes.push(p.to_string());
                    regex_service.push(i);
                }
                None => {
                    regexes.push(whole_words(p));
                    regex_service.push(i);
                }
            }
        }
        rarest_keys(&mut shaped.iter_mut().map(|(s, _, _)| s).collect::<Vec<_>>());
        // Each key once, with the shapes that have it, in first-seen order.
        let mut by_key: HashMap<&[u8], usize> = HashMap::new();
        let mut keys: Vec<(&[u8], Vec<usize>)> = Vec::new();
        for (e, (shape, _, _)) in shaped.iter().enumerate() {
            let key = shape.key_bytes();
            let k = *by_key.entry(key).or_insert_with(|| {
                keys.push((key, Vec::new()));
                keys.len() - 1
            });
            keys[k].1.push(e);
        }
        // Noncontiguous NFAs: quick to build, about as fast as a DFA on
        // short command lines (a DFA, which the default may pick for few
        // patterns, takes seconds to build for one long literal).
        let literals = keys
            .chunks(CHUNK)
            .map(|chunk| {
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::NoncontiguousNFA))
                    .build(chunk.iter().map(|(key, _)| key))
                    .map(|ac| (ac, chunk.iter().map(|(_, es)| es.clone()).collect()))
            })
            .collect::<Result<Vec<_>, _>>()
            .context("building the process matcher")?;
        let set = RegexSetBuilder::new(&regexes)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .context("compiling the process patterns")?;
        Ok(Matcher {
            services: specs.len(),
            needs: specs
                .iter()
                .map(|s| (s.process.is_some(), s.exe.is_some()))
                .collect(),
            anywhere: specs.iter().map(|s| s.anywhere).collect(),
            exact_exe,
            literals,
            fallback: shaped.iter().map(|_| std::sync::OnceLock::new()).collect(),
            shaped,
            set,
            regex_service,
        })
    }

    /// Whether shaped pattern `e` matches `text` with its key at `at`.
    fn shaped_at(&self, e: usize, text: &str, at: usize) -> bool {
        let (shape, i, pattern) = &self.shaped[e];
        let anywhere = self.anywhere[*i];
        shape
            .holds_at(text.as_bytes(), at, anywhere)
            .unwrap_or_else(|| {
                let regex = self.fallback[e].get_or_init(|| {
                    let full = match anywhere {
                        true => pattern.clone(),
                        false => whole_words(pattern),
                    };
                    Regex::new(&full).ok()
                });
                regex.as_ref().is_some_and(|r| r.is_match(text))
            })
    }

    /// Services whose pattern this process matches, in ascending order.
    pub(crate) fn services_of(&self, process: &Process) -> Vec<usize> {
        let text = process.cmdline.as_bytes();
        let mut hits: Vec<usize> = Vec::new();
        for (automaton, shaped) in &self.literals {
            for m in automaton.find_overlapping_iter(text) {
                for &e in &shaped[m.pattern().as_usize()] {
                    if self.shaped_at(e, &process.cmdline, m.start()) {
                        hits.push(self.shaped[e].1);
                    }
                }
            }
        }
        if !self.regex_service.is_empty() {
            hits.extend(
                self.set
                    .matches(&process.cmdline)
                    .into_iter()
                    .map(|i| self.regex_service[i]),
            );
        }
        // `exe` must hold too where it is given; it alone is enough where
        // there is no pattern.
        let exact: &[usize] = process
            .exe
            .as_deref()
            .and_then(|e| self.exact_exe.get(e))
            .map_or(&[], Vec::as_slice);
        hits.retain(|&i| !self.needs[i].1 || exact.contains(&i));
        hits.extend(exact.iter().filter(|&&i| !self.needs[i].0));
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    /// Whether this process is some service's (a look keeps only these).
    pub(crate) fn matches(&self, process: &Process) -> bool {
        !self.services_of(process).is_empty()
    }

    /// For every service, the processes that are it, by ascending pid.
    pub(crate) fn find<'p>(&self, processes: &'p [Process]) -> Vec<Vec<&'p Process>> {
        let mut found = vec![Vec::new(); self.services];
        for p in processes {
            for i in self.services_of(p) {
                found[i].push(p);
            }
        }
        for procs in &mut found {
            procs.sort_unstable_by_key(|p| p.pid);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pattern: &str) -> Spec<'_> {
        Spec {
            process: Some(pattern),
            anywhere: false,
            exe: None,
        }
    }

    fn process(cmdline: &str, exe: Option<&str>) -> Process {
        Process {
            pid: 1,
            cmdline: cmdline.to_string(),
            exe: exe.map(str::to_string),
            uid: None,
            ppid: None,
            start_time: 0,
        }
    }

    #[test]
    fn whole_word_table() {
        for (pattern, cmdline, want) in [
            (
                "/usr/sbin/sshd",
                "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
                true,
            ),
            ("/usr/sbin/sshd", "/usr/sbin/sshd -D", true),
            ("/usr/sbin/sshd", "/usr/sbin/sshd", true),
            ("/usr/sbin/sshd", "vi /usr/sbin/sshd_config", false),
            ("/usr/sbin/sshd", "vi /usr/sbin/sshd.conf", false),
            ("/usr/sbin/sshd", "/usr/sbin/sshd-keygen", false),
            ("/usr/sbin/sshd", "x/usr/sbin/sshd", false),
            ("cp", "scp host:a b", false),
            ("cp", "/bin/cp a b", true),
            ("cp", "cpio -i", false),
            ("sshd", "sshd: alice@pts/0", true),
            (
                "/usr/sbin/(apache2|httpd)",
                "/usr/sbin/httpd -DFOREGROUND",
                true,
            ),
            (
                "^/usr/bin/python3 .*/app\\.py",
                "/usr/bin/python3 /srv/app.py --port 80",
                true,
            ),
            (
                "^/usr/bin/python3 .*/app\\.py",
                "sudo /usr/bin/python3 /srv/app.py",
                false,
            ),
            (
                "nginx: master",
                "nginx: master process /usr/sbin/nginx",
                true,
            ),
            ("nginx: master", "nginx: worker process", false),
            ("/opt/a", "/opt/ab /opt/a", true),
            ("/opt/a", "/opt/a/", true),
            ("/opt/a", "é/opt/aé", true),
            ("/opt/app\\.py", "python /opt/app.py", true),
            ("/opt/app\\.py", "python /opt/appxpy", false),
            ("(?i)/OPT/A", "/opt/a", true),
            // Dots, anchors: shaped, found by their longest literal piece.
            (
                "/usr/sbin/php-fpm8.2",
                "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)",
                false,
            ),
            (
                "/usr/sbin/php-fpm8.2",
                "/usr/sbin/php-fpm8.2 --nodaemonize",
                true,
            ),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8x2", true),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8.22", false),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8\n2", false),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8é2", true),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8éé2", false),
            (
                "python3.11 /srv/app.py",
                "/usr/bin/python3.11 /srv/app.py -v",
                true,
            ),
            (
                "python3.11 /srv/app.py",
                "/usr/bin/python3.11 /srv/app.pyc",
                false,
            ),
            ("^/usr/sbin/sshd", "/usr/sbin/sshd -D", true),
            ("^/usr/sbin/sshd", "sshd: /usr/sbin/sshd [listener]", false),
            ("app.jar$", "java -jar /srv/app.jar", true),
            ("app.jar$", "java -jar /srv/app.jar --x", false),
            ("^/opt/a.b$", "/opt/a.b", true),
            ("^/opt/a.b$", "/opt/a.b ", false),
            ("x.ab.ab", "x.ab.ab.ab", false),
            ("x.ab.ab", "y x.ab.ab z", true),
            ("ab.ab", "abcab abxab", true),
            ("a.c.e", "a c e", true),
            (
                "/usr/lib/postgresql/15/bin/postgres -D /var/lib/pg.d",
                "/usr/lib/postgresql/15/bin/postgres -D /var/lib/pg.d -c x",
                true,
            ),
        ] {
            // The literal path and the regex path must agree.
            for use_literals in [true, false] {
                let m = Matcher::build(vec![spec(pattern)], use_literals).unwrap();
                let got = !m.services_of(&process(cmdline, None)).is_empty();
                assert_eq!(
                    got, want,
                    "{pattern:?} against {cmdline:?} (literals: {use_literals})"
                );
            }
        }
    }

    /// `anywhere`: inside words too, as CFEngine and Monit match.
    #[test]
    fn anywhere_table() {
        for (pattern, cmdline, want) in [
            ("mysql", "/usr/sbin/mysqld --daemonize", true),
            ("mysql", "/usr/bin/mysqld_safe", true),
            ("redis", "/usr/bin/redis-server 127.0.0.1:6379", true),
            ("jar$", "java -jar /srv/app.jar", true),
            ("jar$", "java -jar /srv/app.jar --x", false),
            (
                "php-fpm8.2",
                "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)",
                false,
            ),
            (
                "php-fpm",
                "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)",
                true,
            ),
            ("apache", "/usr/sbin/apache2 -k start", true),
            ("nginx", "/usr/sbin/sshd -D", false),
        ] {
            for use_literals in [true, false] {
                let spec = Spec {
                    anywhere: true,
                    ..spec(pattern)
                };
                let m = Matcher::build(vec![spec], use_literals).unwrap();
                let got = !m.services_of(&process(cmdline, None)).is_empty();
                assert_eq!(
                    got, want,
                    "{pattern:?} anywhere in {cmdline:?} ({use_literals})"
                );
            }
        }
    }

    /// What each pattern comes to: a shape (its pieces, anchors and key),
    /// or a regular expression for the set.
    #[test]
    fn shape_table() {
        let lit = |s: &str| Piece::Lit(s.as_bytes().to_vec());
        for (pattern, want) in [
            (
                "/usr/sbin/sshd",
                Some((vec![lit("/usr/sbin/sshd")], false, false, 0)),
            ),
            (
                "/usr/sbin/php-fpm8.2",
                Some((
                    vec![lit("/usr/sbin/php-fpm8"), Piece::Any, lit("2")],
                    false,
                    false,
                    0,
                )),
            ),
            (
                "^a.bcd$",
                Some((vec![lit("a"), Piece::Any, lit("bcd")], true, true, 2)),
            ),
            (
                "ab.cd",
                Some((vec![lit("ab"), Piece::Any, lit("cd")], false, false, 0)),
            ),
            (
                "/opt/app\\.py",
                Some((vec![lit("/opt/app.py")], false, false, 0)),
            ),
            // A literal piece of two bytes at least, to find it by.
            ("a.b", None),
            (".", None),
            ("", None),
            // Anything else is a regular expression.
            ("(?i)sshd", None),
            ("/usr/sbin/(apache2|httpd)", None),
            ("^/usr/bin/python3 .*/app\\.py", None),
            ("sshd$x", None),
            ("x^sshd", None),
            ("(?m)^sshd", None),
            ("(?s)a.bc", None),
            ("[a]bc", Some((vec![lit("abc")], false, false, 0))),
        ] {
            let got = shape(pattern).map(|s| (s.pieces, s.start, s.end, s.key));
            assert_eq!(got, want, "{pattern:?}");
        }
    }

    proptest::proptest! {
        /// Shaped patterns and the regular expressions they are agree, on
        /// command lines made of the characters that matter (word bytes,
        /// boundaries, a line feed, a character of two bytes).
        #[test]
        fn shaped_patterns_agree_with_their_regular_expressions(
            pattern in "\\^?[ab./]{2,6}\\$?",
            cmdline in "[ab./ \né-]{0,12}",
            anywhere in proptest::bool::ANY,
        ) {
            let spec = Spec { process: Some(&pattern), anywhere, exe: None };
            let shaped = Matcher::build(vec![spec], true).unwrap();
            let regex = Matcher::build(vec![spec], false).unwrap();
            let p = process(&cmdline, None);
            proptest::prop_assert_eq!(shaped.services_of(&p), regex.services_of(&p), "{:?} in {:?}", pattern, cmdline);
        }
    }

    proptest::proptest! {
        /// Several shaped patterns at once (sharing pieces, keys, or being
        /// the same): the services they find are the regular expressions'.
        #[test]
        fn several_shaped_patterns_agree_with_their_regular_expressions(
            patterns in proptest::collection::vec("\\^?[ab./]{2,6}\\$?", 1..6),
            cmdline in "[ab./ \né-]{0,16}",
        ) {
            let specs: Vec<Spec> = patterns.iter().map(|p| spec(p)).collect();
            let shaped = Matcher::build(specs.clone(), true).unwrap();
            let regex = Matcher::build(specs, false).unwrap();
            let p = process(&cmdline, None);
            proptest::prop_assert_eq!(shaped.services_of(&p), regex.services_of(&p), "{:?} in {:?}", patterns, cmdline);
        }
    }

    /// Each shape is looked for by the piece fewest others share, the
    /// longest of those; the same key is one automaton pattern.
    #[test]
    fn the_rarest_piece_is_the_key() {
        let key_of = |patterns: &[&str]| -> Vec<String> {
            let mut shapes: Vec<Shape> = patterns.iter().map(|p| shape(p).unwrap()).collect();
            rarest_keys(&mut shapes.iter_mut().collect::<Vec<_>>());
            (shapes.iter())
                .map(|s| String::from_utf8_lossy(s.key_bytes()).into_owned())
                .collect()
        };
        assert_eq!(key_of(&["/usr/sbin/php-fpm8.2"]), ["/usr/sbin/php-fpm8"]);
        assert_eq!(
            key_of(&[
                "/srv/apps/run.worker-1",
                "/srv/apps/run.worker-2",
                "/srv/apps/run.web"
            ]),
            ["worker-1", "worker-2", "web"]
        );
        // Shared by all: the longest still.
        assert_eq!(
            key_of(&["/opt/x/bin.py", "/opt/x/bin.py"]),
            ["/opt/x/bin", "/opt/x/bin"]
        );
        let m = Matcher::new(
            [
                "/srv/apps/run.worker-1",
                "/srv/apps/run.worker-2",
                "/srv/apps/run.worker-1",
            ]
            .map(spec),
        )
        .unwrap();
        assert_eq!(
            m.literals.iter().map(|(_, keys)| keys.len()).sum::<usize>(),
            2
        );
        let one = process("/srv/apps/run/worker-1 --queue a", None);
        assert_eq!(m.services_of(&one), vec![0, 2]);
        let other = process("/srv/apps/run/worker-10", None);
        assert_eq!(m.services_of(&other), Vec::<usize>::new());
    }

    #[test]
    fn plain_paths_are_literals_and_the_rest_are_not() {
        for (pattern, want) in [
            ("/usr/sbin/sshd", Some("/usr/sbin/sshd")),
            ("nginx: master", Some("nginx: master")),
            ("/opt/app\\.py", Some("/opt/app.py")),
            ("/opt/app.py", None),
            ("^/usr/sbin/sshd", None),
            ("(?i)sshd", None),
            ("", None),
        ] {
            assert_eq!(literal(pattern).as_deref(), want, "{pattern}");
        }
    }

    #[test]
    fn process_matches_the_command_line_only() {
        // An ssh session runs sshd's executable but is not the service; the
        // listener names the path on its command line.
        let m = Matcher::new(["/usr/sbin/sshd", "/usr/sbin/named"].map(spec)).unwrap();
        let session = process("sshd: root@notty", Some("/usr/sbin/sshd"));
        assert_eq!(m.services_of(&session), Vec::<usize>::new());
        let listener = process(
            "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
            Some("/usr/sbin/sshd"),
        );
        assert_eq!(m.services_of(&listener), vec![0]);
    }

    /// (process, exe) of one service against (cmdline, exe) of a process.
    #[test]
    fn exe_table() {
        let rewritten = ("sshd: /usr/sbin/sshd [listener]", Some("/usr/sbin/sshd"));
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            (&'a str, Option<&'a str>),
            bool,
        );
        let rows: Vec<Row> = vec![
            (None, Some("/usr/sbin/sshd"), rewritten, true),
            (
                None,
                Some("/usr/sbin/sshd"),
                ("sshd: root@pts/0", Some("/usr/sbin/sshd")),
                true,
            ),
            (
                None,
                Some("/usr/sbin/sshd"),
                ("/usr/sbin/sshd -D", None),
                false,
            ),
            (
                None,
                Some("/usr/sbin/sshd"),
                ("/usr/bin/vi /usr/sbin/sshd", Some("/usr/bin/vi")),
                false,
            ),
            (Some("listener"), Some("/usr/sbin/sshd"), rewritten, true),
            (
                Some("listener"),
                Some("/usr/sbin/sshd"),
                ("sshd: root@pts/0", Some("/usr/sbin/sshd")),
                false,
            ),
            (
                Some("listener"),
                Some("/usr/sbin/sshd"),
                ("listener", Some("/usr/bin/other")),
                false,
            ),
        ];
        for (i, (pattern, exe, (cmdline, proc_exe), want)) in rows.into_iter().enumerate() {
            let m = Matcher::new([Spec {
                process: pattern,
                anywhere: false,
                exe,
            }])
            .unwrap();
            let got = !m.services_of(&process(cmdline, proc_exe)).is_empty();
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn one_process_can_be_several_services_and_find_groups_pids() {
        let m = Matcher::new(["/opt/a", "a", "/opt/b"].map(spec)).unwrap();
        let procs: Vec<Process> = [(7, "/opt/a run"), (3, "/opt/a"), (9, "unrelated")]
            .into_iter()
            .map(|(pid, cmdline)| Process {
                pid,
                ..process(cmdline, None)
            })
            .collect();
        let pids: Vec<Vec<u32>> = m
            .find(&procs)
            .iter()
            .map(|v| v.iter().map(|p| p.pid).collect())
            .collect();
        assert_eq!(pids, vec![vec![3, 7], vec![3, 7], vec![]]);
    }
}
