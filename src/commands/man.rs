//! `tend man [8|5]`: the manual pages, generated so they cannot drift from
//! the code: tend(8), the commands (each one's usage and options from the
//! clap definitions) with examples, files, exit status and environment; and
//! tend.tend(5), the policy language, each attribute from the language's
//! own registry. The package installs both.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

/// Which page: tend(8), the commands (default), or tend.tend(5), the
/// policy language.
pub(crate) fn man(policy: bool) -> Result<Exit> {
    let page = match policy {
        true => policy_page(),
        false => command_page(),
    };
    std::io::Write::write_all(&mut std::io::stdout(), page.as_bytes())?;
    Ok(Exit::Converged)
}

/// Text for roff: backslashes and hyphens escaped, a leading dot or quote
/// kept from being read as a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A block of example lines, shown as they are typed.
fn example(out: &mut String, what: &str, lines: &[&str]) {
    out.push_str(&format!(".TP\n{}\n.nf\n", roff(what)));
    for l in lines {
        out.push_str(&format!("{}\n", roff(l)));
    }
    out.push_str(".fi\n");
}

fn title(out: &mut String, name: &str, section: u8) {
    out.push_str(&format!(
        ".TH {} {section} \"\" \"tend {}\" \"{}\"\n",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION"),
        if section == 8 {
            "System Administration"
        } else {
            "File Formats"
        }
    ));
}

/// tend(8).
fn command_page() -> String {
    let mut cmd = Cli::command().name("tend");
    cmd.build();
    let mut out = String::new();
    title(&mut out, "tend", 8);
    out.push_str(".SH NAME\ntend \\- keep a Unix host's services running, from cron\n");
    out.push_str(".SH SYNOPSIS\n");
    out.push_str(".B tend\n[\\fIPASS OPTIONS\\fR]\n.br\n");
    let subcommands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    for sub in &subcommands {
        let usage = (*sub).clone().render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ");
        for line in usage.lines() {
            let line = line.trim();
            let line = line.strip_prefix("tend ").unwrap_or(line);
            let line = if line.starts_with(sub.get_name()) {
                line.to_string()
            } else {
                format!("{} {line}", sub.get_name())
            };
            out.push_str(&format!(".B tend\n{}\n.br\n", roff(&line)));
        }
    }
    out.push_str(".SH DESCRIPTION\n");
    out.push_str(&roff(
        "tend keeps a Unix host's services running. Cron (or its systemd timer) starts it every five minutes; it reads a small class-guarded policy (CFEngine-style any::, web|dns::; see tend.tend(5)), works out which services this host must run, looks at the process table once, restarts what is down, prints a line only when something changed, and exits. Cron mails what it prints, so no mail means all is well.",
    ));
    out.push_str("\n.PP\n");
    out.push_str(&roff(
        "It never fights a package manager: while dpkg, rpm, apt, dnf, yum, zypper or pacman is at work, restarts wait. A service that keeps dying is said once to be flapping or crash-looping, then tried at growing intervals; its recovery is said once. tend remembers between runs in its state directory, so a problem is mailed once, then reminded every six hours.",
    ));
    out.push('\n');
    out.push_str(".SH \"PASS OPTIONS\"\n");
    out.push_str(&roff(
        "These apply to a pass (tend, tend run) and, where they make sense, to every command.",
    ));
    out.push('\n');
    for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
        options_entry(&mut out, arg);
    }
    out.push_str(".SH COMMANDS\n");
    for sub in &subcommands {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            ".TP\n.B {}\n{}\n",
            roff(sub.get_name()),
            roff(&about)
        ));
        let own: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
            .filter(|a| cmd.get_arguments().all(|g| g.get_id() != a.get_id()))
            .collect();
        if !own.is_empty() {
            out.push_str(".RS\n");
            for arg in own {
                options_entry(&mut out, arg);
            }
            out.push_str(".RE\n");
        }
    }
    out.push_str(".SH EXAMPLES\n");
    example(
        &mut out,
        "What would a pass do on this host? (runs nothing)",
        &["tend --dry-run"],
    );
    example(
        &mut out,
        "Check a policy repository before a push, warnings failing too:",
        &["tend validate --strict policy/"],
    );
    example(
        &mut out,
        "Which services apply on another host, and why:",
        &["tend plan --host www1 --os debian_12"],
    );
    example(
        &mut out,
        "How one service is recognised, checked and brought back:",
        &["tend explain apache"],
    );
    example(
        &mut out,
        "What the last pass found, as text or JSON:",
        &["tend status", "tend status --format json"],
    );
    example(
        &mut out,
        "Hold every restart during maintenance, or one service's:",
        &[
            "tend pause --for 2h --reason \"kernel upgrade\"",
            "tend pause db --for 30m --reason \"schema migration\"",
            "tend resume db",
        ],
    );
    example(
        &mut out,
        "A crash-looping service is fixed: try it now, not at its next try:",
        &["tend reset bind"],
    );
    example(
        &mut out,
        "Bring a Monit or CFEngine configuration over:",
        &["tend import monit /etc/monit/monitrc -o /etc/tend/imported"],
    );
    example(
        &mut out,
        "The cron line (/etc/cron.d/tend):",
        &[
            "MAILTO=ops@example.org",
            "*/5 * * * * root /usr/sbin/tend --splay 60",
        ],
    );
    out.push_str(".SH FILES\n");
    for (file, what) in [
        ("/etc/tend", "the policy: a file, or a directory of *.tend files read as one policy (-f)"),
        ("/var/lib/tend/state.json", "what is remembered between passes: each service's status, restarts, reminders (--state-dir; $XDG_STATE_HOME/tend for others than root)"),
        ("/var/lib/tend/lock", "held by a pass for its whole length"),
        ("/var/lib/tend/policy.good", "the last good policy, enforced while the configured one is broken"),
        ("/var/lib/tend/pause.json", "the admin's pause (tend pause); pause.NAME.json a package manager hook's; hold.ID.json one service's"),
        ("/var/lib/tend/outbox.json", "events not yet delivered to the policy's channels"),
        ("/etc/cron.d/tend", "the cron line that runs a pass every five minutes, except where systemd is PID 1 and tend.timer is enabled"),
        ("/usr/lib/systemd/system/tend.timer", "with tend.service, runs a pass every five minutes where systemd is PID 1 (the packages install both; output in journalctl -u tend)"),
        ("/etc/apt/apt.conf.d/80tend", "the apt hook that pauses tend while dpkg runs"),
    ] {
        out.push_str(&format!(".TP\n.I {}\n{}\n", roff(file), roff(what)));
    }
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in [
        ("0", "every service that applies is running (and for other commands: success)"),
        ("1", "some service that applies is still down (failing, backing off, given up, held), or the lock has been held past --stale-after"),
        ("2", "bad usage, or a broken policy with no last good copy to enforce (validate: errors, or warnings with --strict)"),
    ] {
        out.push_str(&format!(".TP\n.B {code}\n{}\n", roff(what)));
    }
    out.push_str(".SH ENVIRONMENT\n");
    for (var, what) in [
        ("XDG_STATE_HOME", "where the state directory is for a user other than root ($XDG_STATE_HOME/tend, or ~/.local/state/tend)"),
        ("TEND_NOW", "for tests only: the time of the run, in unix seconds"),
        ("TEND_BOOTED", "for tests only: when the host booted, in unix seconds (after_boot)"),
        ("TEND_FULL_SCAN", "for tests only: read the whole process table even when pidfiles and units name every service"),
        ("TEND_SYSLOG_SOCKET", "for tests only: the syslog socket instead of /dev/log"),
    ] {
        out.push_str(&format!(".TP\n.B {var}\n{}\n", roff(what)));
    }
    out.push_str(".SH \"SEE ALSO\"\n.BR tend.tend (5)\n");
    out
}

/// One option: its flags and value, then its help.
fn options_entry(out: &mut String, arg: &clap::Arg) {
    let mut names = Vec::new();
    if let Some(s) = arg.get_short() {
        names.push(format!("\\-{s}"));
    }
    if let Some(l) = arg.get_long() {
        names.push(format!("\\-\\-{}", roff(l)));
    }
    let value = match (arg.get_action().takes_values(), arg.get_value_names()) {
        (true, Some(v)) => format!(" \\fI{}\\fR", roff(&v.join(" "))),
        (true, None) => format!(
            " \\fI{}\\fR",
            roff(&arg.get_id().to_string().to_uppercase())
        ),
        _ => String::new(),
    };
    let name = if names.is_empty() {
        let shown = match arg.get_value_names() {
            Some(v) => v.join(" "),
            None => arg.get_id().to_string().to_uppercase(),
        };
        format!("\\fI{}\\fR", roff(&shown))
    } else {
        format!("\\fB{}\\fR{value}", names.join(", "))
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    out.push_str(&format!(".TP\n{name}\n{}\n", roff(&help)));
}

/// tend.tend(5).
fn policy_page() -> String {
    let mut out = String::new();
    title(&mut out, "tend.tend", 5);
    out.push_str(".SH NAME\ntend.tend \\- the policy language of tend(8)\n");
    out.push_str(".SH SYNOPSIS\n.nf\n");
    for line in [
        "# /etc/tend/services.tend",
        "class web = www1 | www2 | hostname(\"web-*\")",
        "",
        "defaults { limit 5 restarts within 1h; remind 6h }",
        "",
        "any::",
        "  service ssh {",
        "    name    \"OpenSSH\"",
        "    process \"/usr/sbin/sshd\"",
        "    pidfile \"/run/sshd.pid\"",
        "    restart \"/usr/sbin/service ssh restart\"",
        "  }",
        "",
        "web::",
        "  service apache {",
        "    process \"/usr/sbin/apache2\"",
        "    http    \"http://127.0.0.1/server-status\" status 200",
        "    restart \"/usr/sbin/service apache2 restart\"",
        "    depends on ssh",
        "  }",
    ] {
        out.push_str(&format!("{}\n", roff(line)));
    }
    out.push_str(".fi\n.SH DESCRIPTION\n");
    for para in [
        "A policy is a file, or a directory whose *.tend files are read as one policy. It is made of statements, one a line (a block's attributes may be separated by newlines or semicolons); # starts a comment.",
        "A guard, a class expression followed by :: alone on its line, applies to the services after it, up to the next guard. Class expressions combine classes with | (or), & or . (and) and ! (not), with parentheses; hostname(\"web-*\") is true on a host whose name matches the pattern. The host sets classes of its own: any, its short and full names, its kernel, architecture and operating system (debian, debian_12), and the time (Hr03, Min00_05, Monday, Day6, ...); tend classes shows them.",
        "class NAME = EXPR defines a class of the policy. defaults { ... } gives the settings every service starts from (the attributes marked so below). channel ID { ... } sends the events of a pass beyond tend's output (a webhook, Slack, an Alertmanager, a command, a heartbeat).",
        "service ID { ... } is one service this host must run: how to recognise its processes, what must hold of them, and how to bring it back. Its attributes follow.",
    ] {
        out.push_str(&format!("{}\n.PP\n", roff(para)));
    }
    out.push_str(&crate::analyzer::attributes_man());
    out.push_str(".SH \"SEE ALSO\"\n.BR tend (8)\n");
    out
}
