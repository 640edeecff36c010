//! Sending a pass's events through the policy's channels, so alerts reach
//! people on hosts with no mail agent, and never at the cost of a restart.
//!
//! Each event a channel wants is written to the outbox (`outbox.json` in
//! the state directory) before anything is sent: a pass killed mid-send
//! loses nothing, and the next sends it again under the same id (at least
//! once; receivers drop repeats by id). Delivery comes after every restart
//! of the pass and spends at most [`BUDGET`] on all channels together, one
//! thread each, oldest event first; a channel that fails waits longer at
//! each failure (a minute, doubling to an hour) and keeps its events in
//! order. A refusal (HTTP 4xx) is a mistake of the channel's: the event is
//! dropped and that said once. The outbox holds at most [`MAX_ENTRIES`];
//! the oldest go first, said once.

pub(crate) mod send;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::event::Kind;
use crate::file;
use crate::policy::{Channel, ChannelKind};
use crate::report::{Outgoing, Reporter};

/// The time a pass spends delivering, all channels together.
pub(crate) const BUDGET: Duration = Duration::from_secs(5);
/// Events kept for later at most; the oldest are dropped first.
pub(crate) const MAX_ENTRIES: usize = 1000;
/// The outbox file in the state directory.
pub(crate) const FILE: &str = "outbox.json";
/// The outbox is refused when larger (a thousand events are far less).
const FILE_MAX: u64 = 32 << 20;
/// The longest wait after failures.
const MAX_WAIT: i64 = 3600;

/// The outbox: events not yet delivered, and what each channel remembers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Outbox {
    /// Oldest first.
    #[serde(default)]
    pub(crate) entries: Vec<Entry>,
    #[serde(default)]
    pub(crate) channels: BTreeMap<String, Memory>,
    /// Events dropped from a full outbox since it last had room (said
    /// when it starts).
    #[serde(default)]
    pub(crate) dropped: usize,
    /// The last event number given.
    #[serde(default)]
    pub(crate) seq: u64,
}

/// One event for one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Stable across retries: receivers drop repeats by it.
    pub(crate) id: String,
    pub(crate) channel: String,
    /// Its line, as cron mails it, and what is mailed under it (a
    /// daemon's last words).
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    /// Its JSON report, with `id`.
    pub(crate) event: serde_json::Map<String, serde_json::Value>,
    /// Attempts so far.
    #[serde(default)]
    pub(crate) tries: u32,
}

/// What a channel remembers between passes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Memory {
    /// Failures in a row.
    #[serde(default)]
    pub(crate) failures: u32,
    /// Not tried again before this time.
    #[serde(default)]
    pub(crate) next_try: i64,
    /// The last problem said, so it is said once.
    #[serde(default)]
    pub(crate) said: Option<String>,
    /// An `alertmanager` channel's alerts firing, by service (`policy` for
    /// a broken policy).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) firing: BTreeMap<String, Alert>,
    /// Its alerts resolved and not yet delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resolved: Vec<Alert>,
}

/// One alert as Alertmanager takes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Alert {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub(crate) starts_at: String,
    #[serde(rename = "endsAt", default, skip_serializing_if = "Option::is_none")]
    pub(crate) ends_at: Option<String>,
}

/// What one try of one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Delivered; what the receiver answered.
    Delivered(String),
    /// Refused for good (HTTP 4xx but 408/429, a bad URL file): dropped.
    Refused(String),
    /// Not now (5xx, a timeout, no connection, a command that failed):
    /// kept and tried again later.
    Later(String),
}

/// The outbox at `dir`, or an empty one and why (missing is no problem).
pub(crate) fn load(dir: &Path) -> (Outbox, Option<String>) {
    let path = dir.join(FILE);
    match file::read(&path, FILE_MAX, file::Links::Refuse) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(outbox) => (outbox, None),
            Err(e) => (
                Outbox::default(),
                Some(format!(
                    "{} could not be read ({e}); its events are lost",
                    path.display()
                )),
            ),
        },
        Err(file::Refused::Missing) => (Outbox::default(), None),
        Err(e) => (
            Outbox::default(),
            Some(format!("{}: {e}; its events are lost", path.display())),
        ),
    }
}

/// Writes the outbox (only root's), atomically.
pub(crate) fn save(dir: &Path, outbox: &Outbox) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(outbox).map_err(std::io::Error::other)?;
    file::replace(&dir.join(FILE), &bytes, 0o600)
}

/// Adds the events each channel wants to the outbox, ids given, the
/// oldest dropped past [`MAX_ENTRIES`].
pub(crate) fn enqueue(outbox: &mut Outbox, channels: &[&Channel], events: &[Outgoing], now: i64) {
    let host = crate::report::host();
    for event in events {
        let wants = |c: &&&Channel| {
            !matches!(
                c.kind,
                ChannelKind::Heartbeat(_) | ChannelKind::Alertmanager(_)
            ) && c.events.iter().any(|e| e == event.kind.name())
        };
        for channel in channels.iter().filter(wants) {
            outbox.seq += 1;
            let id = format!("{host}-{now}-{}", outbox.seq);
            let mut object = event.event.clone();
            object.insert("id".into(), id.clone().into());
            object.insert("channel".into(), channel.id.clone().into());
            outbox.entries.push(Entry {
                id,
                channel: channel.id.clone(),
                text: event.text.clone(),
                detail: event.detail.clone(),
                event: object,
                tries: 0,
            });
        }
    }
    let over = outbox.entries.len().saturating_sub(MAX_ENTRIES);
    if over > 0 {
        outbox.entries.drain(..over);
        outbox.dropped += over;
    }
}

/// How long a channel waits after its `failures`th failure in a row.
pub(crate) fn wait(failures: u32) -> i64 {
    60i64
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(MAX_WAIT)
}

/// The events of this pass (`events`) through the channels that apply,
/// with what earlier passes could not deliver: queued, sent within the
/// budget, and what happened said once. Nothing is sent when the outbox
/// cannot be written first.
pub(crate) fn deliver(
    dir: &Path,
    channels: &[&Channel],
    events: &[Outgoing],
    (now, down): (i64, bool),
    reporter: &mut Reporter,
) {
    let (mut outbox, damaged) = load(dir);
    if let Some(why) = damaged {
        reporter.say(Kind::NotifyFailed, &format!("tend: {why}"), true);
    }
    if channels.is_empty() && outbox.entries.is_empty() {
        return;
    }
    let before = outbox.dropped;
    enqueue(&mut outbox, channels, events, now);
    // Events of a channel no longer in the policy (or not for this host)
    // have nowhere to go.
    outbox
        .entries
        .retain(|e| channels.iter().any(|c| c.id == e.channel));
    outbox
        .channels
        .retain(|id, _| channels.iter().any(|c| &c.id == id));
    if outbox.dropped > before && before == 0 {
        reporter.say(
            Kind::NotifyDropped,
            &format!(
                "tend: the outbox is full ({MAX_ENTRIES} events not yet delivered); the oldest are dropped until the channels take them"
            ),
            true,
        );
    }
    if let Err(e) = save(dir, &outbox) {
        reporter.say(
            Kind::NotifyFailed,
            &format!(
                "tend: cannot write the outbox {}: {e}; nothing is sent this pass",
                dir.join(FILE).display()
            ),
            true,
        );
        return;
    }
    let beat = heartbeat(events, down);
    let mut own: BTreeMap<String, Entry> = BTreeMap::new();
    for channel in channels {
        match channel.kind {
            ChannelKind::Heartbeat(_) => {
                own.insert(channel.id.clone(), beat.clone());
            }
            ChannelKind::Alertmanager(_) => {
                let memory = outbox.channels.entry(channel.id.clone()).or_default();
                track(memory, events, chrono::Utc::now());
                if let Some(entry) = alerts(memory, chrono::Utc::now()) {
                    own.insert(channel.id.clone(), entry);
                }
            }
            _ => {}
        }
    }
    let results = send_all(&outbox, channels, &own, now, Instant::now() + BUDGET);
    settle(&mut outbox, results, now, reporter);
    if outbox.entries.is_empty() {
        outbox.dropped = 0;
    }
    if let Err(e) = save(dir, &outbox) {
        reporter.say(
            Kind::NotifyFailed,
            &format!(
                "tend: cannot write the outbox {}: {e}",
                dir.join(FILE).display()
            ),
            true,
        );
    }
}

/// How an event changes an Alertmanager channel's alerts: the key it is
/// about, and whether it fires (with its severity) or resolves.
fn alerting(event: &Outgoing) -> Option<(String, Option<&'static str>)> {
    let service = || event.event.get("service")?.as_str().map(str::to_string);
    Some(match event.kind {
        Kind::Restarting | Kind::Flapping => (service()?, Some("warning")),
        Kind::Failed
        | Kind::StillFailing
        | Kind::CrashLooping
        | Kind::StillCrashLooping
        | Kind::GaveUp
        | Kind::StillGivenUp
        | Kind::Deferred
        | Kind::UpgradeFailed => (service()?, Some("critical")),
        Kind::Restarted | Kind::Recovered | Kind::RunningAgain | Kind::Steady => (service()?, None),
        Kind::PolicyBroken => ("policy".into(), Some("critical")),
        Kind::PolicyFixed => ("policy".into(), None),
        _ => return None,
    })
}

/// The alerts after this pass's events: one firing per service down
/// (started when first seen, its summary the latest line), moved to the
/// resolved when it is back. One that fired and was resolved in this same
/// pass (a daemon restarted at once) is not sent at all.
fn track(memory: &mut Memory, events: &[Outgoing], now: chrono::DateTime<chrono::Utc>) {
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let before: std::collections::HashSet<String> = memory.firing.keys().cloned().collect();
    let host = crate::report::host();
    for event in events {
        let Some((key, fires)) = alerting(event) else {
            continue;
        };
        match fires {
            Some(severity) => {
                let field = |k: &str| event.event.get(k).and_then(|v| v.as_str()).unwrap_or("");
                let alert = memory.firing.entry(key.clone()).or_insert_with(|| Alert {
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                    starts_at: stamp.clone(),
                    ends_at: None,
                });
                let name = match key.as_str() {
                    "policy" => "TendPolicyBroken",
                    _ => "TendServiceDown",
                };
                alert.labels = BTreeMap::from([
                    ("alertname".into(), name.into()),
                    ("host".into(), host.clone()),
                    ("severity".into(), severity.into()),
                ]);
                if key != "policy" {
                    alert.labels.insert("service".into(), key.clone());
                    alert
                        .annotations
                        .insert("name".into(), field("name").into());
                }
                alert
                    .annotations
                    .insert("summary".into(), event.text.clone());
            }
            None => {
                if let Some(mut alert) = memory.firing.remove(&key) {
                    if before.contains(&key) {
                        alert.ends_at = Some(stamp.clone());
                        alert
                            .annotations
                            .insert("resolved".into(), event.text.clone());
                        memory.resolved.push(alert);
                    }
                }
            }
        }
    }
}

/// What an Alertmanager channel sends this pass: every alert firing,
/// refreshed (it ends in 15 minutes unless the next pass says it still
/// fires: a host that stops reporting lets its alerts end), and those
/// resolved. None when there is nothing.
fn alerts(memory: &Memory, now: chrono::DateTime<chrono::Utc>) -> Option<Entry> {
    if memory.firing.is_empty() && memory.resolved.is_empty() {
        return None;
    }
    let until =
        (now + chrono::Duration::minutes(15)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut all: Vec<Alert> = memory
        .firing
        .values()
        .cloned()
        .map(|mut a| {
            a.ends_at = Some(until.clone());
            a
        })
        .collect();
    all.extend(memory.resolved.iter().cloned());
    let mut event = serde_json::Map::new();
    event.insert(
        "alerts".into(),
        serde_json::to_value(all).unwrap_or_default(),
    );
    Some(Entry {
        id: String::new(),
        channel: String::new(),
        text: String::new(),
        detail: None,
        event,
        tries: 0,
    })
}

/// This pass's heartbeat: what it printed (or that all is well), and
/// whether something is down.
fn heartbeat(events: &[Outgoing], down: bool) -> Entry {
    let text = match events.is_empty() {
        true => "all is well".to_string(),
        false => events
            .iter()
            .map(|e| match &e.detail {
                Some(d) => format!("{}\n{d}", e.text),
                None => e.text.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let mut event = serde_json::Map::new();
    event.insert("down".into(), down.into());
    Entry {
        id: String::new(),
        channel: String::new(),
        text,
        detail: None,
        event,
        tries: 0,
    }
}

/// One thread a channel whose turn it is, each sending its events oldest
/// first until one is not delivered or the deadline; the answers that came
/// back by the deadline, by event id. A thread still sending then is left:
/// its event stays in the outbox and is sent again by a later pass.
fn send_all(
    outbox: &Outbox,
    channels: &[&Channel],
    own: &BTreeMap<String, Entry>,
    now: i64,
    deadline: Instant,
) -> Vec<(String, String, Answer)> {
    let (tx, rx) = mpsc::channel::<(String, Option<(String, Answer)>)>();
    let mut running: Vec<String> = Vec::new();
    for channel in channels {
        let due = outbox
            .channels
            .get(&channel.id)
            .is_none_or(|m| m.next_try <= now);
        // A heartbeat's ping and Alertmanager's alerts are this pass's:
        // sent every pass, never kept as events.
        let heartbeat = matches!(
            channel.kind,
            ChannelKind::Heartbeat(_) | ChannelKind::Alertmanager(_)
        );
        let entries: Vec<Entry> = match heartbeat {
            true => own.get(&channel.id).cloned().into_iter().collect(),
            false => outbox
                .entries
                .iter()
                .filter(|e| e.channel == channel.id)
                .cloned()
                .collect(),
        };
        if !(due || heartbeat) || entries.is_empty() {
            continue;
        }
        let channel = (*channel).clone();
        let tx = tx.clone();
        running.push(channel.id.clone());
        std::thread::spawn(move || {
            for entry in entries {
                if Instant::now() >= deadline {
                    break;
                }
                let said = (entry.text.as_str(), entry.detail.as_deref());
                let answer = send::send(&channel, said, &entry.event, deadline);
                let later = matches!(answer, Answer::Later(_));
                let _ = tx.send((channel.id.clone(), Some((entry.id, answer))));
                if later {
                    break;
                }
            }
            // Done: all sent, one not delivered, or out of time.
            let _ = tx.send((channel.id.clone(), None));
        });
    }
    drop(tx);
    let mut results = Vec::new();
    while !running.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left + Duration::from_millis(200)) {
            Ok((channel, Some((id, answer)))) => results.push((channel, id, answer)),
            Ok((channel, None)) => running.retain(|c| *c != channel),
            Err(_) => break,
        }
    }
    // A channel still sending at the deadline: its event stays, and the
    // channel waits as after a failure.
    for channel in running {
        let why = format!(
            "no answer within the pass's {} s for sending",
            BUDGET.as_secs()
        );
        results.push((channel, String::new(), Answer::Later(why)));
    }
    results
}

/// The outbox after the answers: delivered and refused events gone, a
/// channel that failed waits, each new problem said once.
fn settle(
    outbox: &mut Outbox,
    results: Vec<(String, String, Answer)>,
    now: i64,
    reporter: &mut Reporter,
) {
    let mut done: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (channel, id, answer) in results {
        let memory = outbox.channels.entry(channel.clone()).or_default();
        // Said once: the problem without its count, remembered.
        let (key, problem) = match answer {
            Answer::Delivered(_) => {
                done.insert(id);
                memory.failures = 0;
                memory.next_try = 0;
                memory.said = None;
                memory.resolved.clear();
                continue;
            }
            Answer::Refused(why) => {
                done.insert(id.clone());
                let key = format!("refused: {why}");
                (key, format!("channel {channel}: the receiver refused an event ({why}); refused events are dropped: check the channel"))
            }
            Answer::Later(why) => {
                memory.failures += 1;
                memory.next_try = now + wait(memory.failures);
                let kept = outbox
                    .entries
                    .iter()
                    .filter(|e| e.channel == channel)
                    .count();
                let key = format!("later: {why}");
                let problem = match kept {
                    // A heartbeat's ping or Alertmanager's alerts: nothing
                    // is kept, the next pass sends anew.
                    0 => format!("channel {channel}: cannot deliver ({why})"),
                    _ => format!("channel {channel}: cannot deliver ({why}); {kept} event(s) kept, tried again by later passes"),
                };
                (key, problem)
            }
        };
        if let Some(e) = outbox.entries.iter_mut().find(|e| e.id == id) {
            e.tries += 1;
        }
        let memory = outbox.channels.entry(channel.clone()).or_default();
        if memory.said.as_deref() != Some(key.as_str()) {
            reporter.say(Kind::NotifyFailed, &format!("tend: {problem}"), true);
            memory.said = Some(key);
        }
    }
    outbox.entries.retain(|e| !done.contains(&e.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: &str, events: &[&str]) -> Channel {
        Channel {
            id: id.into(),
            kind: crate::policy::ChannelKind::Webhook(crate::policy::Url::Written(
                "http://127.0.0.1/".into(),
            )),
            events: events.iter().map(|e| e.to_string()).collect(),
            timeout: Duration::from_secs(5),
            guard: None,
        }
    }

    fn event(kind: Kind) -> Outgoing {
        Outgoing {
            kind,
            text: kind.name().into(),
            detail: None,
            event: serde_json::Map::new(),
        }
    }

    /// Each event goes to the channels that want it, in order, each with
    /// its own id; past the bound the oldest go.
    #[test]
    fn enqueue_table() {
        let (a, b) = (
            channel("a", &["restarting", "restarted"]),
            channel("b", &["failed"]),
        );
        let events = [
            event(Kind::Restarting),
            event(Kind::Failed),
            event(Kind::Restarted),
            event(Kind::Note),
        ];
        let mut outbox = Outbox::default();
        enqueue(&mut outbox, &[&a, &b], &events, 100);
        let got: Vec<(&str, &str)> = outbox
            .entries
            .iter()
            .map(|e| (e.channel.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a", "restarting"), ("b", "failed"), ("a", "restarted")]
        );
        let ids: std::collections::HashSet<&str> =
            outbox.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        assert!(outbox
            .entries
            .iter()
            .all(|e| e.event["id"] == e.id.as_str()));
        let many: Vec<Outgoing> = (0..MAX_ENTRIES).map(|_| event(Kind::Failed)).collect();
        enqueue(&mut outbox, &[&a, &b], &many, 200);
        assert_eq!(outbox.entries.len(), MAX_ENTRIES);
        assert_eq!(outbox.dropped, 3);
        assert!(outbox.entries.iter().all(|e| e.channel == "b"));
    }

    #[test]
    fn wait_table() {
        for (failures, want) in [
            (1, 60),
            (2, 120),
            (3, 240),
            (6, 1920),
            (7, 3600),
            (40, 3600),
        ] {
            assert_eq!(wait(failures), want, "{failures}");
        }
    }
}
