//! What a test node keeps on disk: its configuration, the environment that points the start
//! script at its own directory, its pid file, and the output read back for failure messages.

use std::path::PathBuf;

use super::TestBroker;

impl TestBroker {
    /// The Erlang VM's pid, from the pid file RabbitMQ writes when it boots.
    pub(super) fn vm_pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.pid_file()).ok()?;
        let pid = pid.trim();
        (!pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit())).then(|| pid.to_owned())
    }

    pub(super) fn pid_file(&self) -> PathBuf {
        self.dir.join("node.pid")
    }

    pub(super) fn write_config(&self) {
        for sub in ["home", "mnesia", "log", "schema", "plugins-expand"] {
            std::fs::create_dir_all(self.dir.join(sub))
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.dir.display()));
        }
        let mut conf = format!(
            "listeners.tcp.1 = 127.0.0.1:{}\n\
             log.console = false\n\
             disk_free_limit.absolute = 1MB\n",
            self.amqp_port
        );
        let mut plugins = "[].\n".to_owned();
        if let Some((tls, port)) = &self.tls {
            // Client certificates are verified when sent, not required: tests with and
            // without one share the node.
            conf.push_str(&format!(
                "listeners.ssl.1 = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                tls.cacertfile.display(),
                tls.certfile.display(),
                tls.keyfile.display()
            ));
            if tls.external_auth {
                conf.push_str(
                    "auth_mechanisms.1 = PLAIN\n\
                     auth_mechanisms.2 = AMQPLAIN\n\
                     auth_mechanisms.3 = EXTERNAL\n\
                     ssl_cert_login_from = common_name\n",
                );
                plugins = "[rabbitmq_auth_mechanism_ssl].\n".to_owned();
            }
        }
        let files = [
            ("rabbitmq.conf", conf),
            ("rabbitmq-env.conf", String::new()),
            ("enabled_plugins", plugins),
        ];
        for (name, content) in files {
            std::fs::write(self.dir.join(name), content)
                .unwrap_or_else(|e| panic!("cannot write {name} in {}: {e}", self.dir.display()));
        }
    }

    /// Writes the Erlang cookie the node boots with (readable by its owner only, or the VM
    /// refuses it).
    pub(super) fn write_cookie(&self, cookie: &str) {
        let path = self.dir.join("home").join(".erlang.cookie");
        std::fs::write(&path, cookie)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
                .unwrap_or_else(|e| panic!("cannot restrict {}: {e}", path.display()));
        }
    }

    /// Everything that makes this node its own, as environment variables of the start
    /// script (see `/usr/lib/rabbitmq/bin/rabbitmq-env` and `rabbitmq-defaults`).
    pub(super) fn environment(&self) -> Vec<(String, String)> {
        let path = |sub: &str| self.dir.join(sub).to_string_lossy().into_owned();
        [
            ("HOME", path("home")),
            ("RABBITMQ_NODENAME", self.node.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_owned()),
            ("RABBITMQ_NODE_PORT", self.amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string()),
            // The distribution listener on loopback only, as the main node's.
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".to_owned(),
            ),
            ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
            ("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
            ("RABBITMQ_PLUGINS_EXPAND_DIR", path("plugins-expand")),
            ("RABBITMQ_MNESIA_BASE", path("mnesia")),
            ("RABBITMQ_LOG_BASE", path("log")),
            ("RABBITMQ_SCHEMA_DIR", path("schema")),
            ("RABBITMQ_FEATURE_FLAGS_FILE", path("feature_flags")),
            ("RABBITMQ_PID_FILE", path("node.pid")),
            ("ERL_CRASH_DUMP", path("erl_crash.dump")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// The end of what the start script printed and of the node's log, for a failure message.
    pub(super) fn last_output(&self) -> String {
        let tail = |path: PathBuf| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(20);
            format!("--- {}\n{}", path.display(), lines[start..].join("\n"))
        };
        let log = self.dir.join("log").join(format!("{}.log", self.node));
        format!("{}\n{}", tail(self.dir.join("server.out")), tail(log))
    }
}
