//! What an admin sees for a broken policy: every error, with file, line,
//! column, the line itself and a caret; exit status 2; nothing run.

use crate::sandbox::{lines, Sandbox};

fn errors_for(policy: &str) -> (i32, String) {
    let sb = Sandbox::new();
    sb.policy(policy);
    let run = sb.tend(&["validate"]);
    assert_eq!(run.stdout, "", "{run:?}");
    (run.code, run.stderr)
}

/// The three mistakes that once misled: an unterminated quote, Monit's
/// `key = value`, a missing `}` before the next service. Each is one error
/// at its cause.
#[test]
fn golden_errors_point_at_the_cause() {
    for (policy, want) in [
        (
            "service a {\n  process \"/usr/sbin/a\n  restart \"x\"\n}\n",
            "tend: policy has 1 error:\npolicy.tend:2:11: error: this string is not closed: add the closing `\"` (a quoted string ends on its line)\n 2 |   process \"/usr/sbin/a\n   |           ^\n",
        ),
        (
            "service a {\n  process = \"/usr/sbin/a\"\n  restart \"x\"\n}\n",
            "tend: policy has 1 error:\npolicy.tend:2:11: error: `process` takes its value after a space, without `=`: write `process \"/usr/sbin/a\"`\n 2 |   process = \"/usr/sbin/a\"\n   |           ^\n",
        ),
        (
            "service a {\n  process \"/usr/sbin/a\"\n  restart \"x\"\n\nservice b {\n  process \"/b\"\n  restart \"y\"\n}\n",
            "tend: policy has 1 error:\npolicy.tend:1:11: error: `service a {` is not closed: a `}` is missing before `service b {`\n 1 | service a {\n   |           ^\n",
        ),
    ] {
        let (code, stderr) = errors_for(policy);
        assert_eq!((code, stderr.as_str()), (2, want), "{policy}");
    }
}

#[test]
fn golden_error_messages() {
    for (policy, want) in [
        (
            "service ssh {\n  process \"/usr/sbin/sshd\"\n  restrat \"x\"\n}\n",
            "tend: policy has 2 errors:\n\
             policy.tend:1:9: error: service `ssh` has no `restart` (or `start`)\n 1 | service ssh {\n   |         ^^^\n\
             policy.tend:3:3: error: unknown attribute `restrat`; did you mean `restart`?\n 3 |   restrat \"x\"\n   |   ^^^^^^^\n",
        ),
        (
            "service a { process \"/a\"; restart \"x\" }\nservice a { process \"/b\"; restart \"y\" }\n",
            "tend: policy has 1 error:\n\
             policy.tend:2:9: error: service `a` is already defined at policy.tend:1:9\n 2 | service a { process \"/b\"; restart \"y\" }\n   |         ^\n",
        ),
        (
            "service a {\n\tprocess \"/usr/sbin/(sshd\"\n\trestart \"x\"\n}\n",
            "tend: policy has 1 error:\n\
             policy.tend:2:10: error: bad regular expression: unclosed group\n 2 | \tprocess \"/usr/sbin/(sshd\"\n   | \t        ^^^^^^^^^^^^^^^^^\n",
        ),
        (
            "class web = hostnme(\"web-*\")\n",
            "tend: policy has 1 error:\n\
             policy.tend:1:13: error: unknown function `hostnme`; known: hostname\n 1 | class web = hostnme(\"web-*\")\n   |             ^^^^^^^\n",
        ),
        (
            "web|::\n  service a { process \"/a\"; restart \"x\" }\n",
            "tend: policy has 1 error:\n\
             policy.tend:1:5: error: expected a class expression, found `::`\n 1 | web|::\n   |     ^\n",
        ),
        (
            "service a {\n  process \"/a\"\n  restart \"x\"\n  timeout soon\n  grace 5 parsecs\n}\n",
            "tend: policy has 2 errors:\n\
             policy.tend:4:11: error: `timeout` needs a duration such as 30s, 5m or 1h\n 4 |   timeout soon\n   |           ^^^^\n\
             policy.tend:5:9: error: `grace` needs a duration such as 30s, 5m or 1h\n 5 |   grace 5 parsecs\n   |         ^^^^^^^^^\n",
        ),
        (
            "class a = b\nclass b = !a\n",
            "tend: policy has 2 errors:\n\
             policy.tend:1:7: error: class `a` depends on itself\n 1 | class a = b\n   |       ^\n\
             policy.tend:2:7: error: class `b` depends on itself\n 2 | class b = !a\n   |       ^\n",
        ),
        // What systemd refuses is refused before a pass asks it.
        (
            "service getty { unit \"getty@\" }\nservice a { unit \"a\"; pidfile \"/run/a.pid\" }\nservice b { unit \"b\" }\nservice c { unit \"b.service\"; process \"/c\" }\n",
            "tend: policy has 3 errors:\n\
             policy.tend:1:22: error: unit `getty@.service` is a template: name an instance, such as \"getty@NAME\"\n 1 | service getty { unit \"getty@\" }\n   |                      ^^^^^^^^\n\
             policy.tend:2:23: error: `pidfile` cannot go with `unit`: systemd names the unit's main process\n 2 | service a { unit \"a\"; pidfile \"/run/a.pid\" }\n   |                       ^^^^^^^\n\
             policy.tend:4:18: error: unit `b.service` is already service `b`'s (at policy.tend:3:18): two services would both restart it\n 4 | service c { unit \"b.service\"; process \"/c\" }\n   |                  ^^^^^^^^^^^\n",
        ),
        // A URL's port must be one; credentials are refused, and never
        // shown, not even in the excerpt of the error.
        (
            "service a { process \"/a\"; restart \"x\"; http \"http://127.0.0.1:99999/\" }\nservice b { process \"/b\"; restart \"x\"; http \"http://admin:hunter2@127.0.0.1/\" }\n",
            "tend: policy has 2 errors:\n\
             policy.tend:1:45: error: bad URL: its port must be 1 to 65535\n 1 | service a { process \"/a\"; restart \"x\"; http \"http://127.0.0.1:99999/\" }\n   |                                             ^^^^^^^^^^^^^^^^^^^^^^^^^\n\
             policy.tend:2:45: error: bad URL: it carries a user name and password, which every report would show; tend sends none\n 2 | service b { process \"/b\"; restart \"x\"; http \"http://admin:*******@127.0.0.1/\" }\n   |                                             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
        ),
        // Carets line up under wide characters.
        (
            "service a {\n  name \"日本のウェブ 🦀\"; restrat \"x\"\n  process \"/a\"; restart \"/a\"\n}\n",
            "tend: policy has 1 error:\n\
             policy.tend:2:20: error: unknown attribute `restrat`; did you mean `restart`?\n 2 |   name \"日本のウェブ 🦀\"; restrat \"x\"\n   |                           ^^^^^^^\n",
        ),
        // A broken guard does not hide the errors of the services under it.
        (
            "web&!::\n  service a {\n    process \"/a\"\n    timeout soon\n  }\n",
            "tend: policy has 3 errors:\n\
             policy.tend:1:6: error: expected a class expression or a class name, found `::`\n 1 | web&!::\n   |      ^\n\
             policy.tend:2:11: error: service `a` has no `restart` (or `start`)\n 2 |   service a {\n   |           ^\n\
             policy.tend:4:13: error: `timeout` needs a duration such as 30s, 5m or 1h\n 4 |     timeout soon\n   |             ^^^^\n",
        ),
        // A guard and a service on one line.
        (
            "web:: service x {\n  process \"/a\"\n  restart \"/a\"\n}\n",
            "tend: policy has 1 error:\n\
             policy.tend:1:7: error: a guard must end its line: put `service` on the line after `web::`\n 1 | web:: service x {\n   |       ^\n",
        ),
    ] {
        let (code, stderr) = errors_for(policy);
        assert_eq!(code, 2, "{policy}");
        assert_eq!(stderr, want, "{policy}");
    }
}

#[test]
fn an_error_on_a_very_long_line_shows_a_window_around_its_column() {
    let name = "n".repeat(10_000);
    let (code, stderr) = errors_for(&format!(
        "service a {{ process \"/a\"; restart \"x\"; name \"{name}\"; grace 5 parsecs }}\n"
    ));
    assert_eq!(code, 2);
    // 100 columns of the line, the column in them.
    let tail = "\"; grace 5 parsecs }";
    let shown = format!("...{}{tail}", "n".repeat(100 - tail.len()));
    let under = format!("{}^^^^^^^^^", " ".repeat(3 + 100 - tail.len() + 9));
    assert_eq!(
        stderr,
        format!(
            "tend: policy has 1 error:\npolicy.tend:1:10055: error: `grace` needs a duration such as 30s, 5m or 1h\n 1 | {shown}\n   | {under}\n"
        )
    );
}

#[test]
fn golden_warnings() {
    let sb = Sandbox::new();
    sb.policy(
        "class linux = hostname(\"x\")\nservice a { process \"/a\"; restart \"/etc/init.d/a restart 2>&1 | logger\" }\nservice b { process \"/b\"; restart \"kill $(cat /run/b.pid)\"; shell yes }\n",
    );
    let run = sb.tend(&["validate"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "policy.tend:1:7: warning: class `linux` is also a class tend sets itself: on hosts where tend sets it this definition is ignored, and elsewhere it makes guards on `linux` true; give it a name of its own\n 1 | class linux = hostname(\"x\")\n   |       ^^^^^\n\
         policy.tend:2:59: warning: `restart` runs `/etc/init.d/a` directly, not through a shell: `>` is passed to it as an argument; write `shell yes` in the service to run the command with /bin/sh\n 2 | service a { process \"/a\"; restart \"/etc/init.d/a restart 2>&1 | logger\" }\n   |                                                           ^\n\
         policy.tend: ok (2 services, 1 class, 2 warnings; sha256 "
            .to_string()
            + run.stdout.rsplit("sha256 ").next().unwrap()
    );
}

/// A typo in a guard's class is a warning (the services under it are
/// checked nowhere): `validate --strict` fails on it, text and JSON, and
/// passes a policy without warnings.
#[test]
fn strict_validate_fails_on_a_warning() {
    let sb = Sandbox::new();
    sb.policy("web::\n  service a { process \"/a\"; restart \"x\" }\nwbe::\n  service b { process \"/b\"; restart \"x\" }\nclass web = hostname(\"www*\")\n");
    let lenient = sb.tend(&["validate"]);
    assert_eq!(lenient.code, 0, "{lenient:?}");
    let strict = sb.tend(&["validate", "--strict"]);
    assert_eq!(strict.code, 2, "{strict:?}");
    assert!(
        strict.stdout.starts_with("policy.tend:3:1: warning: class `wbe` is never defined by the policy and is not a built-in class; did you mean `web`?\n"),
        "{strict:?}"
    );
    assert!(
        strict.stdout.contains(
            "\npolicy.tend: not ok with --strict (2 services, 1 class, 1 warning; sha256 "
        ),
        "{strict:?}"
    );
    let json = sb.tend(&["validate", "--strict", "--format", "json"]);
    assert_eq!(json.code, 2, "{json:?}");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (doc["ok"].as_bool(), doc["warnings"].as_u64()),
        (Some(false), Some(1))
    );
    sb.policy(
        "web::\n  service a { process \"/a\"; restart \"x\" }\nclass web = hostname(\"www*\")\n",
    );
    let clean = sb.tend(&["validate", "--strict"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(
        clean.stdout.contains(": ok (1 service, 1 class; sha256 "),
        "{clean:?}"
    );
}

#[test]
fn several_syntax_errors_in_one_file_are_all_reported() {
    let (code, stderr) = errors_for(
        "any::\nservice a {\n  process \"/a\n}\nservice b {\n  process \"/b\"\n  restart \"/b\"\n}\nweb|::\nservice c {\n  restrat \"x\"\n}\n",
    );
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("tend: policy has 5 errors:\n"),
        "{stderr}"
    );
    for at in [
        "policy.tend:3:11:",
        "policy.tend:9:5:",
        "policy.tend:10:9:",
        "policy.tend:11:3:",
    ] {
        assert!(stderr.contains(at), "missing {at} in\n{stderr}");
    }
}

#[test]
fn errors_in_a_policy_directory_name_their_file() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("policy.tend")).unwrap();
    sb.write(
        "policy.tend/10-base.tend",
        "service a { process \"/a\"; restart \"x\" }\n",
    );
    sb.write(
        "policy.tend/20-web.tend",
        "\nservice a { process \"/a\"; restart \"x\" }\n",
    );
    sb.write("policy.tend/README", "not a policy file, not read");
    let run = sb.tend(&["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "policy.tend/20-web.tend:2:9: error: service `a` is already defined at policy.tend/10-base.tend:1:9"
        ),
        "{run:?}"
    );
}

#[test]
fn broken_policy_runs_nothing() {
    let sb = Sandbox::new();
    sb.policy("service a { process \"/a\"; restart \"touch @DIR@/ran\" }\nservice b {\n");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 2);
    assert!(!sb.path("ran").exists());
}

#[test]
fn unreadable_policy_is_exit_2_with_one_line() {
    let sb = Sandbox::new();
    let run = sb.tend(&[]);
    assert_eq!(run.code, 2);
    let lines = lines(&run);
    assert!(
        lines[0].starts_with("tend: cannot read policy policy.tend: No such file or directory")
            && lines[0].ends_with(
                "; no last good policy to fall back on, nothing is checked until it is fixed"
            ),
        "{run:?}"
    );
    assert_eq!((lines.len(), run.stderr.as_str()), (1, ""), "{run:?}");
}

#[test]
fn binary_garbage_is_an_error_not_a_crash() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("policy.tend"), b"any::\n\xff\xfe\x00service").unwrap();
    let run = sb.tend(&["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("policy.tend:2:1: error: not valid UTF-8 text"),
        "{run:?}"
    );
}

#[test]
fn dependency_cycles_and_unknown_dependencies_are_errors_with_positions() {
    let sb = Sandbox::new();
    sb.policy(
        "service a {\n  process \"/a\"\n  restart \"x\"\n  depends on b\n}\nservice b {\n  process \"/b\"\n  restart \"x\"\n  depends on c, a\n}\nservice c {\n  process \"/c\"\n  restart \"x\"\n  depends on nosuch\n}\n",
    );
    let run = sb.tend(&["validate"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "tend: policy has 3 errors:\n\
         policy.tend:4:14: error: dependency cycle: a -> b -> a\n 4 |   depends on b\n   |              ^\n\
         policy.tend:9:14: error: dependency cycle: b -> a -> b\n 9 |   depends on c, a\n   |              ^\n\
         policy.tend:14:14: error: `c` depends on `nosuch`, which is not a service\n 14 |   depends on nosuch\n    |              ^^^^^^\n"
    );
}

/// A 1 MB attribute name is quoted short, and an error on every word of a
/// long line shows a window of it, each error one short excerpt.
#[test]
fn a_huge_name_and_a_long_line_make_short_errors() {
    let key = "k".repeat(1 << 20);
    let (code, err) = errors_for(&format!(
        "service a {{ process \"/a\"; restart \"x\"; {key} \"v\" }}\n"
    ));
    assert_eq!(code, 2);
    assert!(err.len() < 1000, "{} bytes", err.len());
    assert!(
        err.contains(&format!("unknown attribute `{}…`", "k".repeat(60))),
        "{err}"
    );

    let words = vec!["posts"; 2000].join(" on ");
    let (code, err) = errors_for(&format!(
        "service a {{ process \"/a\"; restart \"x\"; depends on {words} }}\n"
    ));
    assert_eq!(code, 2);
    // `depends on a on b`: every word after the first `on` is a name.
    assert!(
        err.starts_with("tend: policy has 3999 errors:\n"),
        "{}",
        &err[..200]
    );
    assert_eq!(err.lines().count(), 1 + 3 * 3999);
    assert!(
        err.lines().all(|l| l.chars().count() < 200),
        "a long excerpt"
    );
    let last = err.lines().rev().nth(1).unwrap();
    assert!(last.starts_with(" 1 | ...on posts on posts"), "{last}");
}
