//! The settings a running gateway cannot take on at a reload: they were put to use once, at
//! start (the store opened, the metrics port bound, root given up, logging set up). A reload
//! reports each changed one in the log as needing a restart rather than ignoring it without a
//! word. The limits per client, `max_sessions` and the OAuth apps, accounts and token cache do
//! change at a reload; only a gateway started with no `[[oauth]]` app needs a restart to take
//! one on.

use super::Config;

impl Config {
    /// The keys whose values differ in `next` but only take effect at the next start.
    pub fn restart_only_changes(&self, next: &Config) -> Vec<&'static str> {
        let (oauth, next_oauth) = (&self.oauth, &next.oauth);
        let user = |c: &Config| c.run_as.as_ref().map(|r| (r.uid, r.user.clone()));
        let group = |c: &Config| c.run_as.as_ref().map(|r| (r.gid, r.group_readable));
        [
            ("store", self.store.to_string() != next.store.to_string()),
            (
                "store.keep_sessions",
                self.keep_sessions != next.keep_sessions,
            ),
            ("metrics.bind", self.metrics_bind != next.metrics_bind),
            ("gateway.user", user(self) != user(next)),
            ("gateway.group", group(self) != group(next)),
            ("gateway.pid_file", self.pid_file != next.pid_file),
            ("gateway.log_format", self.log_json != next.log_json),
            // The token logins exist only when the gateway started with an app.
            (
                "oauth",
                oauth.apps.is_empty() && oauth.apps != next_oauth.apps,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{load, Config};

    /// A valid config in its own folder: `gateway` in `[gateway]`, listener `a` on `port`,
    /// then `extra` tables.
    fn write(name: &str, gateway: &str, port: u16, extra: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailtls-restart-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mailtls.toml");
        let text = format!(
            "[gateway]\n{gateway}\n\n[[upstream]]\nname = \"up\"\naddress = \"127.0.0.1:993\"\nprotocol = \"imap\"\n\n[[listener]]\nname = \"a\"\nprotocol = \"imap\"\nbind = \"127.0.0.1:{port}\"\ntls = \"none\"\nupstream = \"up\"\n{extra}"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn config(name: &str, gateway: &str, port: u16, extra: &str) -> Config {
        load(&write(name, gateway, port, extra)).expect("a valid config")
    }

    #[test]
    fn settings_put_to_use_at_start_are_reported_when_changed() {
        let started = config("started", "", 1143, "");
        let next = config(
            "started",
            "max_sessions = 5\nfailed_login_window_secs = 60\nlog_format = \"json\"\npid_file = \"gateway.pid\"",
            1143,
            "[store]\npath = \"other.db\"\n[metrics]\nbind = \"127.0.0.1:9109\"\n",
        );
        assert_eq!(
            started.restart_only_changes(&next),
            [
                "store",
                "metrics.bind",
                "gateway.pid_file",
                "gateway.log_format",
            ]
        );
        assert!(started.restart_only_changes(&started).is_empty());
    }

    #[test]
    fn listeners_policies_exceptions_and_limits_change_without_a_restart() {
        let started = config("listeners", "", 1143, "");
        let exception = "[[exception]]\nclient = \"10.0.0.0/24\"\nowner = \"it@lab.example\"\nreason = \"old MFP\"\nexpires = \"2099-01-01\"\nplan = \"replace it\"\n";
        let next = config(
            "listeners",
            "upstream_timeout_secs = 5\nmax_sessions = 5\nmax_unauthenticated_per_client = 1\nfailed_login_window_secs = 60",
            1144,
            exception,
        );
        assert_eq!(started.restart_only_changes(&next), Vec::<&str>::new());
    }

    #[test]
    fn the_pid_file_is_taken_from_the_config_folder_which_must_hold_its_folder() {
        let path = write("pid", "pid_file = \"run/gateway.pid\"", 1143, "");
        let problems = load(&path).expect_err("run/ does not exist");
        assert_eq!(problems[0].key, "gateway.pid_file");
        assert!(problems[0].fix.contains("/run/mailtls"), "{}", problems[0]);
        std::fs::create_dir_all(path.parent().unwrap().join("run")).unwrap();
        let config = load(&path).expect("run/ exists now");
        assert_eq!(
            config.pid_file,
            Some(path.parent().unwrap().join("run/gateway.pid"))
        );
    }
}
