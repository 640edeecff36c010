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
//! Most patterns are plain paths. Those that are pure literals go into
//! Aho-Corasick automata (one per [`CHUNK`] patterns: building one takes
//! time that grows faster than its patterns, so a huge policy gets several
//! small ones), and the boundaries of each occurrence are checked;
//! only real regular expressions go into the `RegexSet`, whose lazy DFA gets
//! costly to build as patterns are added. Both give the same answers.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use anyhow::{Context, Result};
use regex::{RegexSet, RegexSetBuilder};
use regex_syntax::hir::HirKind;

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
fn literal(pattern: &str) -> Option<String> {
    // Most patterns are paths with nothing special in them: no parsing (a
    // long one costs time the parser would spend joining its characters).
    if !pattern.is_empty() && !pattern.chars().any(regex_syntax::is_meta_character) {
        return Some(pattern.to_string());
    }
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    match hir.kind() {
        HirKind::Literal(lit) => String::from_utf8(lit.0.to_vec()).ok(),
        _ => None,
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
    /// Automata of at most [`CHUNK`] literal patterns each, and the service
    /// of each of their patterns, by pattern index.
    literals: Vec<(AhoCorasick, Vec<usize>)>,
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
        let mut literal_texts: Vec<String> = Vec::new();
        let mut literal_service = Vec::new();
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
            match literal(p).filter(|_| use_literals) {
                Some(text) => {
                    literal_texts.push(text);
                    literal_service.push(i);
                }
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
        // Noncontiguous NFAs: quick to build, about as fast as a DFA on
        // short command lines (a DFA, which the default may pick for few
        // patterns, takes seconds to build for one long literal).
        let literals = literal_texts
            .chunks(CHUNK)
            .zip(literal_service.chunks(CHUNK))
            .map(|(texts, services)| {
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::NoncontiguousNFA))
                    .build(texts)
                    .map(|ac| (ac, services.to_vec()))
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
            set,
            regex_service,
        })
    }

    /// Services whose pattern this process matches, in ascending order.
    pub(crate) fn services_of(&self, process: &Process) -> Vec<usize> {
        let text = process.cmdline.as_bytes();
        let mut hits: Vec<usize> = Vec::new();
        for (automaton, service) in &self.literals {
            for m in automaton.find_overlapping_iter(text) {
                let i = service[m.pattern().as_usize()];
                let before = m.start().checked_sub(1).map(|i| text[i]);
                let after = text.get(m.end()).copied();
                if self.anywhere[i]
                    || (!before.is_some_and(is_word_byte) && !after.is_some_and(is_word_byte))
                {
                    hits.push(i);
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
