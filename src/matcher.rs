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

use std::collections::HashMap;

use anyhow::{Context, Result};
use regex::{RegexSet, RegexSetBuilder};

use crate::scan::Process;

const WORD: &str = r"A-Za-z0-9_.\-";

/// The regular expression actually run for a `process` pattern.
pub fn whole_words(pattern: &str) -> String {
    format!("(?:^|[^{WORD}])(?:{pattern})(?:$|[^{WORD}])")
}

/// Everything needed to tell, for one process, which services it is.
pub struct Matcher {
    set: RegexSet,
    by_exe: HashMap<String, Vec<usize>>,
}

impl Matcher {
    /// `patterns[i]` is service i's `process` pattern.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Matcher> {
        let patterns: Vec<&str> = patterns.into_iter().collect();
        let set = RegexSetBuilder::new(patterns.iter().map(|p| whole_words(p)))
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .context("compiling the process patterns")?;
        let mut by_exe: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in patterns.iter().enumerate() {
            by_exe.entry((*p).to_string()).or_default().push(i);
        }
        Ok(Matcher { set, by_exe })
    }

    /// Services whose pattern this process matches, in ascending order.
    pub fn services_of(&self, process: &Process) -> Vec<usize> {
        let mut hits: Vec<usize> = self.set.matches(&process.cmdline).into_iter().collect();
        if let Some(exe) = &process.exe {
            if let Some(ids) = self.by_exe.get(exe.as_str()) {
                hits.extend(ids);
                hits.sort_unstable();
                hits.dedup();
            }
        }
        hits
    }

    /// For every service, the pids of the processes that are it, ascending.
    pub fn find(&self, processes: &[Process]) -> Vec<Vec<u32>> {
        let mut found = vec![Vec::new(); self.set.len()];
        for p in processes {
            for i in self.services_of(p) {
                found[i].push(p.pid);
            }
        }
        for pids in &mut found {
            pids.sort_unstable();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(cmdline: &str, exe: Option<&str>) -> Process {
        Process {
            pid: 1,
            cmdline: cmdline.to_string(),
            exe: exe.map(str::to_string),
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
        ] {
            let m = Matcher::new([pattern]).unwrap();
            let got = !m.services_of(&process(cmdline, None)).is_empty();
            assert_eq!(got, want, "{pattern:?} against {cmdline:?}");
        }
    }

    #[test]
    fn executable_path_matches_when_command_line_is_rewritten() {
        let m = Matcher::new(["/usr/sbin/sshd", "/usr/sbin/named"]).unwrap();
        let p = process("sshd: root@notty", Some("/usr/sbin/sshd"));
        assert_eq!(m.services_of(&p), vec![0]);
    }

    #[test]
    fn one_process_can_be_several_services_and_find_groups_pids() {
        let m = Matcher::new(["/opt/a", "a", "/opt/b"]).unwrap();
        let procs = vec![
            Process {
                pid: 7,
                cmdline: "/opt/a run".into(),
                exe: None,
            },
            Process {
                pid: 3,
                cmdline: "/opt/a".into(),
                exe: None,
            },
            Process {
                pid: 9,
                cmdline: "unrelated".into(),
                exe: None,
            },
        ];
        assert_eq!(m.find(&procs), vec![vec![3, 7], vec![3, 7], vec![]]);
    }
}
