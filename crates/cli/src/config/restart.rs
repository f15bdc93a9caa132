//! The settings a running gateway cannot take on at a reload: they were put to use once, at
//! start (the store opened, the metrics port bound, root given up, logging set up, the token
//! cache and the counts of the limits in use). A reload reports each changed one in the log as
//! needing a restart rather than ignoring it without a word.

use super::Config;

impl Config {
    /// The keys whose values differ in `next` but only take effect at the next start.
    pub fn restart_only_changes(&self, next: &Config) -> Vec<&'static str> {
        let (now, then) = (&self.gateway, &next.gateway);
        let (limits, next_limits) = (&now.client_limits, &then.client_limits);
        let (oauth, next_oauth) = (&self.oauth, &next.oauth);
        let user = |c: &Config| c.run_as.as_ref().map(|r| (r.uid, r.user.clone()));
        let group = |c: &Config| c.run_as.as_ref().map(|r| (r.gid, r.group_readable));
        [
            ("store.path", self.store_path != next.store_path),
            ("metrics.bind", self.metrics_bind != next.metrics_bind),
            ("gateway.user", user(self) != user(next)),
            ("gateway.group", group(self) != group(next)),
            ("gateway.pid_file", self.pid_file != next.pid_file),
            ("gateway.log_format", self.log_json != next.log_json),
            (
                "gateway.max_sessions",
                now.max_sessions != then.max_sessions,
            ),
            (
                "gateway.max_unauthenticated",
                limits.max_unauthenticated != next_limits.max_unauthenticated,
            ),
            (
                "gateway.max_unauthenticated_per_client",
                limits.max_unauthenticated_per_client != next_limits.max_unauthenticated_per_client,
            ),
            (
                "gateway.failed_logins_per_client",
                limits.failed_logins_per_client != next_limits.failed_logins_per_client,
            ),
            (
                "gateway.failed_login_window_secs",
                limits.failed_login_window != next_limits.failed_login_window,
            ),
            ("oauth", oauth.apps != next_oauth.apps),
            ("account", oauth.accounts != next_oauth.accounts),
            ("token_cache", oauth.token_cache != next_oauth.token_cache),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}
