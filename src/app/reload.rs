//! SIGHUP: what may change without a restart, and how the running endpoint applies it.

use super::control::ControlLoop;
use super::plan::{core_config, enable_syn_offload, publish_cookies};
use crate::config::Config;
use crate::engine::Control;
use crate::tcp::responder::HttpResponses;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// What SIGHUP may change without a restart, and the messages that change it.
pub(super) fn reload_messages(old: &Config, new: &Config) -> (Vec<Control>, Vec<String>) {
    let mut msgs = Vec::new();
    let mut ignored = Vec::new();
    if old.listen != new.listen {
        msgs.push(Control::Listeners(
            new.listen.iter().map(|l| (l.port, l.mode)).collect(),
        ));
    }
    if old.http != new.http {
        msgs.push(Control::Http(HttpResponses::new(
            new.http.status,
            &new.http.content_type,
            &new.http.body,
        )));
    }
    if old.tcp.cookie_secret != new.tcp.cookie_secret {
        if let Some(s) = new.tcp.cookie_secret {
            msgs.push(Control::RotateSecret(s));
        } else {
            ignored.push("tcp.cookie_secret (removing it keeps the current secret)".to_owned());
        }
    }
    let mut restart = |name: &str, same: bool| {
        if !same {
            ignored.push(format!("{name} (needs a restart)"));
        }
    };
    restart("interface", old.interface == new.interface);
    restart("addresses", old.addresses == new.addresses);
    restart("workers", old.workers == new.workers);
    restart("xdp", old.xdp == new.xdp);
    restart("steering", old.steering == new.steering);
    restart("ops", old.ops == new.ops);
    let mut old_tcp = old.tcp.clone();
    old_tcp.cookie_secret = new.tcp.cookie_secret;
    restart("tcp (except cookie_secret)", old_tcp == new.tcp);
    (msgs, ignored)
}

impl ControlLoop {
    /// SIGHUP: apply what can change while running (listeners, HTTP response, cookie
    /// secret); say what needs a restart.
    pub(super) fn apply_reload(&mut self, new: Config) {
        let (msgs, ignored) = reload_messages(&self.plan.cfg, &new);
        for name in &ignored {
            warn!("SIGHUP: not applied: {name}");
        }
        let p = &mut self.plan;
        if new.listen != p.cfg.listen {
            let ports: Vec<u16> = new.listen.iter().map(|l| l.port).collect();
            if let Err(e) = p.prog.set_ports(&ports) {
                warn!("SIGHUP: updating the XDP port map: {e:#}");
            }
            p.core_cfg.listeners = core_config(&new).listeners;
            if p.prog.syn_offload_enabled() {
                if let Err(e) = enable_syn_offload(&mut p.prog, &p.core_cfg, self.start) {
                    warn!("SIGHUP: updating the XDP listeners: {e:#}");
                }
            }
        }
        for m in &msgs {
            if let Control::RotateSecret(s) = m {
                // Old cookies stay valid for one validity period (two minutes).
                self.forget_secret_at = Some(Instant::now() + Duration::from_secs(120));
                self.ctl_jar.rotate(*s);
                if p.occupancy.is_some() {
                    if let Err(e) = publish_cookies(&mut p.prog, &self.ctl_jar) {
                        warn!("SIGHUP: publishing the new secret to XDP: {e:#}");
                    }
                }
            }
            for c in &self.controls {
                let _ = c.send(m.clone());
            }
        }
        info!(
            changes = msgs.len(),
            "SIGHUP: configuration reloaded; established connections kept"
        );
        p.cfg.listen = new.listen;
        p.cfg.http = new.http;
        p.cfg.tcp.cookie_secret = new.tcp.cookie_secret;
    }
}
