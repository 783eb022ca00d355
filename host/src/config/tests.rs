use super::*;

#[test]
fn debug_output_redacts_secrets() {
    let config = Config {
        database_url: "postgres://vigilo:hunter2@db.internal/vigilo?password=hunter3".into(),
        smtp: Some(SmtpConfig {
            host: "mail".into(),
            port: 25,
            from: "vigilo@example.com".into(),
            username: Some("u".into()),
            password: Some("s3cret".into()),
            tls: SmtpTls::default(),
            ca_file: None,
        }),
        ..Config::default()
    };
    let text = format!("{config:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("hunter3"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("db.internal"), "{text}");
}

#[test]
fn environment_overrides_file_values() {
    let mut config: Config = toml::from_str(
        "bind = \"127.0.0.1:9000\"\ndata_dir = \"/var/lib/vigilo\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    assert_eq!(config.log_format, LogFormat::Json);
    config
        .apply_env(|name| match name {
            "VIGILO_BIND" => Some("0.0.0.0:8081".into()),
            "VIGILO_INSTALLED_PLUGINS" => Some("/a.so, /b.so#sha256=AB12".into()),
            "VIGILO_WEBHOOK_ALLOWED_HOSTS" => Some("hooks.internal, 10.0.0.7".into()),
            "VIGILO_WEBHOOK_ALLOW_PRIVATE_NETWORKS" => Some("no".into()),
            _ => None,
        })
        .unwrap();
    assert_eq!(config.bind.port(), 8081);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/vigilo"));
    assert_eq!(config.webhook_allowed_hosts, ["hooks.internal", "10.0.0.7"]);
    assert!(!config.webhook_allow_private_networks);
    assert_eq!(
        config.installed_plugins,
        vec![
            InstalledPlugin::Path(PathBuf::from("/a.so")),
            InstalledPlugin::Pinned {
                path: PathBuf::from("/b.so"),
                sha256: "AB12".into()
            }
        ]
    );
    assert_eq!(
        config.installed_plugins[1].sha256().as_deref(),
        Some("ab12")
    );
    let pinned: Config =
        toml::from_str("installed_plugins = [\"/x.so\", { path = \"/y.so\", sha256 = \"ff\" }]")
            .unwrap();
    assert_eq!(pinned.installed_plugins[1].path(), Path::new("/y.so"));
    // A misspelt key in an entry is refused, not ignored, and named.
    let err =
        toml::from_str::<Config>("installed_plugins = [{ path = \"/y.so\", sha265 = \"ff\" }]")
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown field `sha265`"), "{err}");
    assert!(toml::from_str::<Config>(
        "installed_plugins = [{ path = \"/y.so\", sha256 = \"ff\", pin = true }]"
    )
    .is_err());
}

#[test]
fn plugin_tiers_come_from_the_file_and_the_environment() {
    let mut config: Config = toml::from_str(
        "plugin_isolation = \"in_process\"\n\
         [plugin_settings.kanban_overview]\nisolation = \"worker\"\nmemory_limit_mb = 64\n",
    )
    .unwrap();
    assert_eq!(config.plugin_isolation, Isolation::InProcess);
    assert_eq!(
        config.plugin_settings["kanban_overview"],
        PluginSettings {
            isolation: Some(Isolation::Worker),
            memory_limit_mb: Some(64)
        }
    );
    config
        .apply_env(|name| {
            (name == "VIGILO_PLUGIN_ISOLATION")
                .then(|| "worker, datepicker_with_holidays=in_process".into())
        })
        .unwrap();
    assert_eq!(config.plugin_isolation, Isolation::Worker);
    assert_eq!(
        config.plugin_settings["datepicker_with_holidays"].isolation,
        Some(Isolation::InProcess)
    );
    // The file's memory setting for a plugin stays.
    assert_eq!(
        config.plugin_settings["kanban_overview"].memory_limit_mb,
        Some(64)
    );
    let err = Config::default()
        .apply_env(|name| (name == "VIGILO_PLUGIN_ISOLATION").then(|| "sandbox".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("VIGILO_PLUGIN_ISOLATION") && err.contains("sandbox"),
        "{err}"
    );
    assert!(toml::from_str::<Config>("plugin_isolation = \"jail\"").is_err());
    assert!(toml::from_str::<Config>("[plugin_settings.x]\nisolaton = \"worker\"").is_err());
    let err = Config {
        plugin_settings: [(
            "x".to_owned(),
            PluginSettings {
                isolation: None,
                memory_limit_mb: Some(1),
            },
        )]
        .into(),
        ..Config::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("memory_limit_mb"), "{err}");
}

#[test]
fn out_of_range_numbers_are_refused_naming_the_setting() {
    assert!(Config::default().validate().is_ok());
    let err = Config {
        task_timeout_secs: u64::MAX / 2,
        ..Config::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("task_timeout_secs = "), "{err}");
    assert!(err.contains("1 to 604800"), "{err}");
    let err = Config {
        invite_ttl_days: 4_000_000,
        ..Config::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("invite_ttl_days"), "{err}");
}

#[test]
fn unknown_keys_and_bad_env_values_are_refused() {
    assert!(toml::from_str::<Config>("bnid = \"x\"").is_err());
    let smtp = |tls: &str| {
        toml::from_str::<Config>(&format!(
            "[smtp]\nhost = \"mail\"\nfrom = \"v@example.com\"\n{tls}"
        ))
        .map(|c| c.smtp.unwrap().tls)
    };
    assert_eq!(smtp("").unwrap(), SmtpTls::StartTls);
    assert_eq!(smtp("tls = \"starttls\"").unwrap(), SmtpTls::StartTls);
    assert_eq!(smtp("tls = \"tls\"").unwrap(), SmtpTls::Tls);
    assert_eq!(smtp("tls = \"none\"").unwrap(), SmtpTls::None);
    assert!(smtp("tls = \"ssl\"").is_err());
    let err = Config::default()
        .apply_env(|name| (name == "VIGILO_BIND").then(|| "nonsense".into()))
        .unwrap_err();
    assert!(err.to_string().contains("VIGILO_BIND"), "{err}");
    let err = Config::default()
        .apply_env(|name| (name == "VIGILO_WEBHOOK_ALLOW_PRIVATE_NETWORKS").then(|| "maybe".into()))
        .unwrap_err();
    assert!(err.to_string().contains("maybe"), "{err}");
}
