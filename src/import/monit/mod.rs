//! `tend import monit`: a monitrc (and the files its `include`s name) read
//! with the pest grammar in grammar/monit.pest, each `check process` made a
//! tend service: its pidfile or pattern, its programs, its port, socket,
//! HTTP, memory and CPU tests, its restart limit (cycles turned into time
//! with `set daemon`), its dependencies. Every other check, setting and
//! test is reported with its place and why.

mod read;
mod translate;

use std::collections::HashSet;
use std::path::PathBuf;

use super::Import;

/// Reads `paths` (and what they include) and converts them. Err: a file
/// that cannot be read or parsed at all, with why.
pub(crate) fn import(paths: &[PathBuf]) -> Result<Import, String> {
    let mut items = Vec::new();
    let mut import = Import::default();
    let mut open = HashSet::new();
    for path in paths {
        read::collect(path, 0, &mut open, &mut items, &mut import.left)?;
    }
    translate::convert(items, &mut import);
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::translate::span;
    use super::*;

    /// One check, its clauses: what tend import writes, and how many
    /// statements it reports.
    #[test]
    fn clauses_table() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want, left) in [
            (
                "check process sshd with pidfile /run/sshd.pid\n start program = \"/etc/init.d/ssh start\"\n stop program = \"/etc/init.d/ssh stop\"\n if failed host localhost port 22 with proto ssh then restart\n if 5 restarts with 5 cycles then timeout",
                vec![
                    ("pidfile", "\"/run/sshd.pid\""),
                    ("start", "\"/etc/init.d/ssh start\""),
                    ("stop", "\"/etc/init.d/ssh stop\""),
                    ("port", "22 expect \"^SSH-\""),
                    ("limit", "5 restarts within 30m then give up"),
                ],
                1,
            ),
            (
                "set daemon 60\nCHECK PROCESS web MATCHING \"^/usr/sbin/apache2\"\n  START PROGRAM = \"/usr/sbin/apachectl start\" with timeout 90 seconds\n  RESTART PROGRAM = '/usr/sbin/apachectl graceful'\n  IF FAILED PORT 80 PROTOCOL HTTP REQUEST \"/health\" STATUS = 200 CONTENT = \"ok\" THEN RESTART\n  if totalmem > 512 MB for 3 cycles then alert\n  if cpu > 90% for 10 cycles then restart\n  if 3 restarts within 10 cycles then unmonitor",
                vec![
                    ("process", "\"^/usr/sbin/apache2\" anywhere"),
                    ("start", "\"/usr/sbin/apachectl start\""),
                    ("timeout", "90s"),
                    ("restart", "\"/usr/sbin/apachectl graceful\""),
                    ("http", "\"http://127.0.0.1:80/health\" status 200 content \"ok\""),
                    ("memory", "above 512MB then report"),
                    ("cpu", "above 90% for 2 runs then restart"),
                    ("limit", "3 restarts within 20m then give up"),
                ],
                3,
            ),
            (
                "check process m with pidfile /run/m.pid\n start program = \"/bin/m\" as uid nobody\n restart program = \"/bin/m -r\"\n if failed unixsocket /run/m.sock then restart\n if failed port 161 type udp then restart\n if failed host db.example.org port 5432 then restart\n if changed pid then alert\n group db",
                vec![
                    ("pidfile", "\"/run/m.pid\""),
                    ("start", "\"/bin/m\""),
                    ("restart", "\"/bin/m -r\""),
                    ("unix", "\"/run/m.sock\""),
                ],
                5,
            ),
            (
                // Monit's `retry N`: N tries within the cycle, as tend's.
                "check process r with pidfile /run/r.pid\n start program = \"/bin/r\"\n restart program = \"/bin/r -r\"\n if failed port 6379\n    retry 3\n    then restart",
                vec![
                    ("pidfile", "\"/run/r.pid\""),
                    ("start", "\"/bin/r\""),
                    ("restart", "\"/bin/r -r\""),
                    ("retry", "3"),
                    ("port", "6379"),
                ],
                0,
            ),
            (
                // `for N cycles`: failing cycles in a row, as passes (3 of
                // 120 s come to 2 passes, said as a change).
                "check process t with pidfile /run/t.pid\n start program = \"/bin/t\"\n restart program = \"/bin/t -r\"\n if failed port 80 for 3 cycles then restart",
                vec![
                    ("pidfile", "\"/run/t.pid\""),
                    ("start", "\"/bin/t\""),
                    ("restart", "\"/bin/t -r\""),
                    ("tolerate", "2 passes"),
                    ("port", "80"),
                ],
                1,
            ),
            (
                // Two ports and two sockets of one daemon: each carried; a
                // port on another host is said.
                "check process pg with pidfile /run/pg.pid\n start program = \"/bin/pg\"\n stop program = \"/bin/pg stop\"\n if failed port 5432 then restart\n if failed port 5433 then restart\n if failed host 10.0.0.9 port 5434 then restart\n if failed unixsocket /run/a.sock then restart\n if failed unixsocket /run/b.sock then restart\n if failed port 80 protocol http request \"/a\" then restart\n if failed port 80 protocol http request \"/b\" then restart",
                vec![
                    ("pidfile", "\"/run/pg.pid\""),
                    ("start", "\"/bin/pg\""),
                    ("stop", "\"/bin/pg stop\""),
                    ("port", "5432"),
                    ("port", "5433"),
                    ("unix", "\"/run/a.sock\""),
                    ("unix", "\"/run/b.sock\""),
                    ("http", "\"http://127.0.0.1:80/a\""),
                    ("http", "\"http://127.0.0.1:80/b\""),
                ],
                1,
            ),
            (
                // A `{ ... }` over several lines is one statement each.
                "set mail-format {\n  from: monit@example.org\n  subject: $SERVICE $EVENT\n}\nset alert ops@example.org but not on { instance,\n  action }\ncheck process s with pidfile /run/s.pid\n  alert root@example.org not on {\n    pid }\n  start program \"/bin/s\"",
                vec![("pidfile", "\"/run/s.pid\""), ("start", "\"/bin/s\"")],
                3,
            ),
        ] {
            let path = dir.path().join("monitrc");
            std::fs::write(&path, text).unwrap();
            let import = import(&[path]).unwrap();
            assert_eq!(import.drafts.len(), 1, "{text}");
            let got: Vec<(&str, &str)> = import.drafts[0]
                .attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(import.all_left().len(), left, "{text}: {:?}", import.all_left());
        }
    }

    /// The classes of input that once made import give up on the whole
    /// file (exit 2): each is now a service left out, or a statement said,
    /// and the rest is written and checked.
    #[test]
    fn hostile_table() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "check process ok with pidfile /run/ok.pid\n start program = \"/bin/ok\"\n";
        for (text, carried, left) in [
            // depends on a check that is not there
            ("check process a with pidfile /run/a.pid\n start program = \"/bin/a\"\n depends on gone\n", vec!["ok", "a"], 1),
            // an apostrophe that leaves a quote open in the command
            ("check process b with pidfile /run/b.pid\n start program = \"/bin/sh -c 'it's'\"\n", vec!["ok"], 1),
            // a POSIX interval Rust's regex refuses, and a look-ahead
            ("check process c matching \"ab{,3}\"\n start program = \"/bin/c\"\ncheck process c2 matching \"a(?=b)\"\n start program = \"/bin/c\"\n", vec!["ok"], 2),
            // a relative pidfile
            ("check process d with pidfile run/d.pid\n start program = \"/bin/d\"\n", vec!["ok"], 1),
            // the same name twice (across included files, say): Monit
            // refuses the file; the first is carried
            ("check process e with pidfile /run/e.pid\n start program = \"/bin/e\"\ncheck process e with pidfile /run/e2.pid\n start program = \"/bin/e2\"\n", vec!["ok", "e"], 1),
            // a depends on a check that was itself left out
            ("check process f matching \"a{,3}\"\n start program = \"/bin/f\"\ncheck process g with pidfile /run/g.pid\n start program = \"/bin/g\"\n depends on f\n", vec!["ok"], 2),
        ] {
            let path = dir.path().join("monitrc");
            std::fs::write(&path, format!("{ok}{text}")).unwrap();
            let mut import = import(std::slice::from_ref(&path)).unwrap();
            let checked = crate::import::checked(&mut import, "test", &[path]);
            assert!(checked.is_ok(), "{text}: {:?}", checked.err());
            let ids: Vec<&str> = import.drafts.iter().map(|d| d.id.as_str()).collect();
            assert_eq!(ids, carried, "{text}");
            assert_eq!(import.all_left().len(), left, "{text}: {:#?}", import.all_left());
        }
    }

    #[test]
    fn span_table() {
        for (s, want) in [(600, "10m"), (7200, "2h"), (90, "90s")] {
            assert_eq!(span(s), want);
        }
    }
}
