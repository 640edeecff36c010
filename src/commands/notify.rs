//! `tend notify test [CHANNEL]`: a test event through each channel that
//! applies to this host (or the one named), now, not through the outbox;
//! what each receiver answered is said, so an admin sees a new channel
//! work before the first incident does.

use anyhow::{bail, Result};

use super::Context;
use crate::exit::Exit;
use crate::notify::{send, Answer};
use crate::policy::ChannelKind;

pub(crate) fn test(ctx: &Context, only: Option<&str>) -> Result<Exit> {
    let enforced = ctx.enforce_noting()?;
    let policy = &enforced.policy;
    let classes = ctx.classes(&enforced, None);
    if let Some(id) = only {
        if !policy.channels.iter().any(|c| c.id == id) {
            bail!("no channel `{id}` in {}", policy.origin);
        }
    }
    let channels: Vec<_> = (policy.channels.iter())
        .filter(|c| only.is_none_or(|id| c.id == id))
        .filter(|c| c.guard.as_ref().is_none_or(|g| classes.eval(g)))
        .collect();
    if channels.is_empty() {
        bail!(
            "no channel of {} applies to this host{}",
            policy.origin,
            only.map(|id| format!(" (`{id}` is guarded off)"))
                .unwrap_or_default()
        );
    }
    let host = crate::report::host();
    let text = format!("tend notify test from {host}: this channel works");
    let mut all = true;
    for channel in channels {
        let mut event = serde_json::Map::new();
        event.insert("time".into(), ctx.now.into());
        event.insert("host".into(), host.clone().into());
        event.insert("event".into(), "test".into());
        event.insert("level".into(), "notice".into());
        event.insert("message".into(), text.clone().into());
        event.insert("id".into(), format!("{host}-{}-test", ctx.now).into());
        event.insert("channel".into(), channel.id.clone().into());
        let deadline = std::time::Instant::now() + channel.timeout;
        let how = match &channel.kind {
            ChannelKind::Exec(c) => format!("exec {}", c.argv[0]),
            ChannelKind::Webhook(url) => format!("webhook {}", send::shown(url)),
            ChannelKind::Slack(url) => format!("slack {}", send::shown(url)),
            ChannelKind::Heartbeat(url) => format!("heartbeat {}", send::shown(url)),
            ChannelKind::Alertmanager(url) => format!("alertmanager {}", send::shown(url)),
        };
        let said = match send::send(channel, (&text, None), &event, deadline) {
            Answer::Delivered(answer) => format!("delivered ({answer})"),
            Answer::Refused(why) => {
                all = false;
                format!("refused ({why})")
            }
            Answer::Later(why) => {
                all = false;
                format!("not delivered ({why})")
            }
        };
        println!("channel {} ({how}): {said}", channel.id);
    }
    Ok(Exit::converged_if(all))
}
