//! `tend import cfengine`: CFEngine 3 policy files read with the pest
//! grammar in grammar/cfengine.pest, their process promises made tend
//! services. It knows the seed's idiom (a `services[ID][name|process|
//! restart]` array walked with `getindices`, a `processes:` promise whose
//! `restart_class` guards the `commands:` promise that restarts it),
//! plain `processes:` promises with `restart_class`, `process_select` and
//! `process_count` bodies where tend has an equivalent, `services:`
//! promises with `service_policy => "start"`, and `classes:` promises with
//! an `expression`. Variables are expanded where the files define them;
//! class guards carry over as they are (CFEngine's syntax is tend's).

mod expand;
mod read;
mod translate;

use std::path::PathBuf;

use super::Import;

/// Reads `paths` and converts them. Err: a file that cannot be read or
/// parsed, with why.
pub(crate) fn import(paths: &[PathBuf]) -> Result<Import, String> {
    let read = read::files(paths)?;
    let mut import = Import::default();
    translate::convert(&read, &mut import);
    import.unique_ids();
    Ok(import)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::expand::{expand, Var};
    use super::translate::guard_of;
    use super::*;

    #[test]
    fn expand_table() {
        let mut vars = HashMap::new();
        vars.insert(
            "s[ssh][process]".to_string(),
            Var::Scalar("/usr/sbin/sshd".into(), "any".into()),
        );
        vars.insert("dir".to_string(), Var::Scalar("/opt".into(), "web".into()));
        let mut bound = HashMap::new();
        bound.insert("s".to_string(), "ssh".to_string());
        for (text, want, guards) in [
            ("$(s[$(s)][process])", Ok("/usr/sbin/sshd"), vec!["any"]),
            (
                "${dir}/bin/x $(main.dir)",
                Ok("/opt/bin/x /opt"),
                vec!["web", "web"],
            ),
            ("$(sys.fqhost)", Err("sys.fqhost"), vec![]),
            ("no vars", Ok("no vars"), vec![]),
        ] {
            let mut g = Vec::new();
            assert_eq!(
                expand(text, &bound, &vars, &mut g),
                want.map(str::to_string).map_err(str::to_string),
                "{text}"
            );
            assert_eq!(g, guards, "{text}");
        }
    }

    /// A bundle: the services it comes to (id, guard, attributes) and how
    /// many statements it reports.
    #[test]
    fn promises_table() {
        let dir = tempfile::tempdir().unwrap();
        type Want<'a> = Vec<(&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>)>;
        let rows: Vec<(&str, Want, usize)> = vec![
            (
                r#"bundle agent main {
  classes: "web" expression => "www1|www2";
  processes:
    linux::
      "/usr/sbin/ntpd" restart_class => "ntp_down", process_select => mine("ntp"),
          process_count => one;
  commands:
    ntp_down::
      "/usr/sbin/service ntp restart" contain => in_shell;
  services:
    web:: "nginx" service_policy => "start";
    "telnet" service_policy => "disable";
  files: "/etc/motd" create => "true";
}
body process_select mine(u) { process_owner => { "$(u)" }; command => "ntpd -g"; process_result => "process_owner"; }
body process_count one { match_range => irange("1", "1"); }"#,
                vec![
                    (
                        "ntpd",
                        Some("linux"),
                        vec![
                            ("process", "\"^(?:ntpd -g)$\""),
                            ("user", "\"ntp\""),
                            ("count", "1"),
                            ("restart", "\"/usr/sbin/service ntp restart\""),
                            ("shell", "yes"),
                        ],
                    ),
                    ("nginx", Some("web"), vec![("unit", "\"nginx\"")]),
                ],
                2,
            ),
            (
                r#"bundle agent main {
  vars: "bin" string => "/opt/app/bin";
  processes:
    "$(bin)/app --serve" restart_class => "app_gone";
    "$(sys.workdir)/x" restart_class => "x_gone";
    "/usr/bin/lonely" signals => { "term" };
  commands:
    "$(bin)/app --serve" ifvarclass => "app_gone";
    "/usr/bin/unrelated";
  reports:
    "app restarted" ifvarclass => "app_gone";
    "hello";
}"#,
                vec![(
                    "app",
                    None,
                    vec![
                        ("process", "\"/opt/app/bin/app --serve\""),
                        ("restart", "\"/opt/app/bin/app --serve\""),
                    ],
                )],
                4,
            ),
            (
                // CFEngine's own example, a namespaced bundle call and
                // services walked from a list.
                r#"bundle agent main {
  methods: "eu" usebundle => default:eu("x");
  vars:
    "component" slist => { "cf-serverd" };
    "svcs" slist => { "ssh", "cron" };
  processes:
    "$(component)" restart_class => canonify("start_$(component)");
  commands:
    "/var/cfengine/bin/$(component)" ifvarclass => canonify("start_$(component)");
  services:
    linux:: "$(svcs)" service_policy => "start";
}"#,
                vec![
                    (
                        "cf-serverd",
                        None,
                        vec![
                            ("process", "\"cf-serverd\" anywhere"),
                            ("restart", "\"/var/cfengine/bin/cf-serverd\""),
                        ],
                    ),
                    ("ssh", Some("linux"), vec![("unit", "\"ssh\"")]),
                    ("cron", Some("linux"), vec![("unit", "\"cron\"")]),
                ],
                1,
            ),
        ];
        for (text, want, left) in rows {
            let path = dir.path().join("p.cf");
            std::fs::write(&path, text).unwrap();
            let import = import(&[path]).unwrap();
            let got: Want = import
                .drafts
                .iter()
                .map(|d| {
                    let attrs = d
                        .attrs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    (d.id.as_str(), d.guard.as_deref(), attrs)
                })
                .collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(import.all_left().len(), left, "{:#?}", import.all_left());
        }
    }

    #[test]
    fn guard_table() {
        for (parts, want) in [
            (vec!["any"], None),
            (vec!["any", "web|dns"], Some("web|dns")),
            (vec!["web|dns", "web|dns"], Some("web|dns")),
            (vec!["linux", "web|dns"], Some("linux & (web|dns)")),
        ] {
            let parts: Vec<String> = parts.into_iter().map(str::to_string).collect();
            assert_eq!(guard_of(&parts).as_deref(), want);
        }
    }
}
